"""Presets: named system prompts with sampling settings (the built-in ones come with the schema)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from app.core.chat.store.database import Database
from app.core.chat.store.errors import StoreError
from app.core.chat.store.records import Preset, adapters_json, output_schema, stored_adapters
from app.core.values.text import clean_text


class Presets(Database):
    """The presets table."""

    def presets(self) -> list[Preset]:
        """Built-in presets first, then the user's, by name."""
        rows = self._query("SELECT * FROM presets ORDER BY builtin DESC, name COLLATE NOCASE")
        return [
            Preset(
                r["id"],
                r["name"],
                r["system_prompt"],
                json.loads(r["sampling"]),
                bool(r["builtin"]),
                output_schema(r["output_schema"]),
                stored_adapters(r["adapters"]),
            )
            for r in rows
        ]

    def save_preset(
        self,
        name: str,
        system_prompt: str,
        sampling: dict[str, Any],
        schema: dict[str, Any] | None = None,
        adapters: Sequence[tuple[str, float]] = (),
    ) -> int:
        """Create or replace the user's preset called `name` (with JSON mode when `schema` is given:
        {} for any JSON object; with LoRA `adapters`, (path, scale) pairs)."""
        name, system_prompt = clean_text(name).strip(), clean_text(system_prompt)
        if not name:
            raise ValueError("a preset needs a name")
        stored = json.dumps(schema) if schema is not None else None
        with self._tx() as db:
            db.execute(
                "INSERT INTO presets(name, system_prompt, sampling, output_schema, adapters) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET system_prompt = excluded.system_prompt, "
                "sampling = excluded.sampling, output_schema = excluded.output_schema, "
                "adapters = excluded.adapters",
                (name, system_prompt, json.dumps(sampling), stored, adapters_json(adapters)),
            )
            return int(db.execute("SELECT id FROM presets WHERE name = ?", (name,)).fetchone()[0])

    def rename_preset(self, preset_id: int, name: str) -> None:
        """Rename a preset (ValueError if the name is taken or empty)."""
        name = clean_text(name).strip()
        if not name:
            raise ValueError("a preset needs a name")
        try:
            with self._tx() as db:
                db.execute("UPDATE presets SET name = ? WHERE id = ?", (name, preset_id))
        except StoreError as exc:
            raise ValueError(f"a preset called “{name}” already exists") from exc

    def delete_preset(self, preset_id: int) -> None:
        """Delete a preset."""
        with self._tx() as db:
            db.execute("DELETE FROM presets WHERE id = ?", (preset_id,))

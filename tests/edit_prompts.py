"""A record to repeat with one change: the prompt whose reply n-gram lookup can mostly guess, shared
by the speculative decoding tests and benchmark."""

from __future__ import annotations

RECORD = {
    "name": "Ada Lovelace",
    "born": 1815,
    "died": 1852,
    "fields": ["mathematics", "computing", "poetry"],
    "country": "England",
    "father": "Lord Byron",
    "mother": "Anne Isabella Milbanke",
    "spouse": "William King",
    "children": ["Byron", "Anne Isabella", "Ralph Gordon"],
}

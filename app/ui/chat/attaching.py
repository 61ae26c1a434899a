"""The chat page's attachments put together: the strip above the message box, the paperclip beside
it, pasting and dropping on the message box and the messages, sent images opening larger; and the
conversation's documents: read and searched by the session, embedded in the background, a reply's
sources opening in full."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt

from app.core.chat.document_context import DocumentContext, Embedder
from app.core.chat.events import ReplyEnded, SessionEvent
from app.core.chat.indexing import thread_embedder
from app.core.inference.events import EmbeddingModelFailed, EmbeddingModelLoaded
from app.core.inference.options import LoadedModel
from app.core.media.attachments import default_folder
from app.core.settings import Settings
from app.ui.chat.attachments import AttachButton, Attachments, AttachmentStrip
from app.ui.chat.context_meter import ContextMeter
from app.ui.chat.controller import ChatController
from app.ui.chat.documents import DocumentIndexer, SourcesDialog
from app.ui.chat.image_viewer import ImageViewer
from app.ui.chat.page import ChatPage
from app.ui.common.banner import Banner
from app.ui.common.status_bar import StatusBar
from app.ui.common.tasks import BackgroundTasks
from app.ui.inference.bridge import InferenceBridge
from app.ui.models.choice import ModelChoice


def attach_images(
    page: ChatPage, tasks: BackgroundTasks, chat: ChatController, meter: ContextMeter, banner: Banner
) -> Attachments:
    """Give the chat page its attachments: the strip above the message box, the paperclip beside it,
    pasting and dropping on the message box and the messages, and sent images opening larger."""
    folder = default_folder()
    strip = AttachmentStrip(folder)
    page.add_above_composer(strip)
    attachments = Attachments(folder, tasks, strip, page)
    button = AttachButton()
    page.add_before_composer(button)
    button.clicked.connect(lambda: attachments.choose(page.window()))
    page.composer.filesGiven.connect(attachments.attach_paths)
    page.composer.imageGiven.connect(attachments.attach_image)
    page.view.filesDropped.connect(attachments.attach_paths)
    attachments.failed.connect(lambda text: banner.show_message(text, error=True))
    strip.changed.connect(meter.timer.start)  # an image takes tokens too
    chat.attachments = meter.attachments = attachments

    def open_sent(row: int, index: int) -> None:
        message = chat.session.transcript.peek(row)
        if 0 <= index < len(message.attachments):
            viewer = ImageViewer(message.attachments[index], folder, tasks, page.window())
            viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            viewer.open()

    page.view.imageOpened.connect(open_sent)
    return attachments


#: What Discover searches for when an embedding model is suggested.
EMBEDDING_SEARCH = "bge-small"


def attach_documents(
    page: ChatPage,
    chat: ChatController,
    choice: ModelChoice,
    bridge: InferenceBridge,
    settings: Settings,
    status: StatusBar,
    banner: Banner,
    discover: Callable[[str], None],
) -> DocumentIndexer:
    """Give the chat its documents: the session reads and searches them, the embedding model (or
    the chat model) embeds their passages in the background (the status bar says how far), and a
    reply's sources open. The embedding model chosen in My models is kept loaded from the start."""
    session = chat.session
    documents = DocumentContext(lambda: session.store, default_folder())
    session.documents = documents
    indexer = DocumentIndexer(documents, page)
    names: dict[str, str | None] = {"chat": None, "embedding": None}

    def choose_embedder() -> None:
        name = names["embedding"] or names["chat"]
        embed = thread_embedder(bridge.worker, going=lambda: not indexer.stopped)
        documents.embedder = Embedder(name, embed) if name else None

    def on_loaded(model: object) -> None:
        names["chat"] = model.info.path.name if isinstance(model, LoadedModel) else None
        choose_embedder()

    def on_event(event: object) -> None:
        if isinstance(event, EmbeddingModelLoaded):
            names["embedding"] = event.model.path.name if event.model is not None else None
            choose_embedder()
            used = event.model.name if event.model is not None else "the chat model"
            status.showMessage(f"Documents are searched with {used}.", 6000)
        elif isinstance(event, EmbeddingModelFailed):
            status.showMessage(f"The embedding model could not be loaded: {event.message}", 10000)

    choice.loadedChanged.connect(on_loaded)
    bridge.happened.connect(on_event)
    if settings.embedding_model:
        bridge.worker.load_embedding_model(settings.embedding_model)

    def on_session(event: SessionEvent) -> None:
        if isinstance(event, ReplyEnded) and event.conversation_id is not None:
            indexer.index(event.conversation_id)  # what the question did not need now: later ones will

    session.listen(on_session)
    indexer.progress.connect(
        lambda what, done, total: status.showMessage(f"{what} the documents: {done:,} of {total:,} passages")
    )

    def indexed(count: int) -> None:
        if not count:
            return
        status.showMessage("The documents are indexed.", 4000)
        if names["embedding"] is None and not names.get("suggested"):
            names["suggested"] = "yes"  # once a session: a suggestion, not a nag
            banner.show_message(
                f"The documents were indexed with {names['chat'] or 'the chat model'}. A small embedding "
                "model (bge-small or nomic-embed-text, a few dozen MB) finds passages better: download "
                "one, then choose Use for document search in My models.",
                error=False,
                action=("Find one", lambda: discover(EMBEDDING_SEARCH)),
            )

    indexer.finished.connect(indexed)
    indexer.failed.connect(
        lambda text: status.showMessage(f"The documents could not be indexed: {text}", 8000)
    )

    def open_sources(row: int, number: int) -> None:
        message = session.transcript.peek(row)
        if message.sources:
            dialog = SourcesDialog(list(message.sources), number, page.window())
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.open()

    page.view.sourceOpened.connect(open_sources)
    return indexer

"""Putting a recipe's code into the editor: ``workspace/applyEdit`` and ``window/showDocument``.

An "edit" recipe (a docstring) replaces the lines it was run on; a "file" recipe (unit tests)
adds to the file its code belongs in, creating it when needed, then opens it. Edits to an open
document carry its version, so a client rejects them if the user typed meanwhile instead of
applying them to the wrong lines.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ragls.recipes.registry import Recipe
from ragls.recipes.run import RecipeResult
from ragls.server.documents import Document, path_to_uri

if TYPE_CHECKING:
    from ragls.server.app import RaglsServer
    from ragls.server.workspaces import Workspace

log = logging.getLogger(__name__)
ANSWER_TIMEOUT = 30.0  # seconds to wait for the client to apply an edit or open a document


class Edits:
    def __init__(self, server: RaglsServer) -> None:
        self.server = server

    def apply_recipe(self, ws: Workspace, recipe: Recipe, result: RecipeResult) -> bool:
        """Apply a code-producing recipe's result; True when the editor applied it."""
        if not result.code or not self._client_can("workspace.apply_edit"):
            return False
        if recipe.output == "edit":
            return self._replace_lines(ws, result.path, result.start_line, result.end_line, result.code)
        if recipe.output == "file" and result.target_path:
            return self._add_to_file(ws, result.target_path, result.code)
        return False

    def show(self, uri: str, selection: types.Range | None = None) -> bool:
        """Open ``uri`` in the editor with ``selection`` selected (a citation, a new test file)."""
        params = types.ShowDocumentParams(uri=uri, take_focus=True, selection=selection)
        try:
            answer = self.server.protocol.send_request(types.WINDOW_SHOW_DOCUMENT, params).result(
                ANSWER_TIMEOUT
            )
        except Exception as exc:  # the client refused, timed out or went away
            log.warning("window/showDocument %s: %s", uri, exc)
            return False
        return bool(getattr(answer, "success", False))

    # -- edits ------------------------------------------------------------------------------

    def _document(self, ws: Workspace, rel: str) -> tuple[Document, bool]:
        """The open document, or the file on disk as one (not open: no version to check)."""
        uri = path_to_uri(ws.root / rel)
        doc = self.server.documents.get(uri)
        if doc is not None:
            return doc, True
        text = (ws.root / rel).read_text(encoding="utf-8", errors="replace")
        return Document(uri, text, encoding=self.server.documents.encoding), False

    def _replace_lines(self, ws: Workspace, rel: str, start: int, end: int, code: str) -> bool:
        doc, is_open = self._document(ws, rel)
        first = types.Position(line=start - 1, character=0)
        if end < doc.line_count:
            last = types.Position(line=end, character=0)  # up to the start of the next line
            code = code if code.endswith("\n") else code + "\n"
        else:
            last = doc.position(len(doc.text))
        edit = types.TextEdit(range=types.Range(start=first, end=last), new_text=code)
        return self._apply(f"ragls: {rel}:{start}-{end}", doc.uri, [edit], doc.version if is_open else None)

    def _add_to_file(self, ws: Workspace, rel: str, code: str) -> bool:
        path = ws.root / rel
        uri = path_to_uri(path)
        code = code if code.endswith("\n") else code + "\n"
        if path.exists():
            doc, is_open = self._document(ws, rel)
            end = doc.position(len(doc.text))
            separator = (
                ""
                if not doc.text or doc.text.endswith("\n\n")
                else "\n"
                if doc.text.endswith("\n")
                else "\n\n"
            )
            edit = types.TextEdit(range=types.Range(start=end, end=end), new_text=separator + code)
            applied = self._apply(f"ragls: add to {rel}", uri, [edit], doc.version if is_open else None)
        elif "create" in (
            self.server.session.client_capability("workspace.workspace_edit.resource_operations") or []
        ):
            origin = types.Position(line=0, character=0)
            applied = self._send(
                f"ragls: create {rel}",
                types.WorkspaceEdit(
                    document_changes=[
                        types.CreateFile(uri=uri, options=types.CreateFileOptions(ignore_if_exists=True)),
                        types.TextDocumentEdit(
                            text_document=types.OptionalVersionedTextDocumentIdentifier(
                                uri=uri, version=None
                            ),
                            edits=[
                                types.TextEdit(range=types.Range(start=origin, end=origin), new_text=code)
                            ],
                        ),
                    ]
                ),
            )
        else:  # the client cannot create files: write it, then open it
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code, encoding="utf-8")
            applied = True
        if applied:
            self.show(uri)
        return applied

    def _apply(self, label: str, uri: str, edits: list[types.TextEdit], version: int | None) -> bool:
        if self._client_can("workspace.workspace_edit.document_changes"):
            identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
            edit = types.WorkspaceEdit(
                document_changes=[types.TextDocumentEdit(text_document=identifier, edits=edits)]
            )
        else:
            edit = types.WorkspaceEdit(changes={uri: edits})
        return self._send(label, edit)

    def _send(self, label: str, edit: types.WorkspaceEdit) -> bool:
        params = types.ApplyWorkspaceEditParams(edit=edit, label=label)
        try:
            answer = self.server.protocol.send_request(types.WORKSPACE_APPLY_EDIT, params).result(
                ANSWER_TIMEOUT
            )
        except Exception as exc:
            log.warning("workspace/applyEdit (%s): %s", label, exc)
            return False
        if not getattr(answer, "applied", False):
            log.info("the editor did not apply %s: %s", label, getattr(answer, "failure_reason", None))
        return bool(getattr(answer, "applied", False))

    def _client_can(self, dotted: str) -> bool:
        return self.server.session.client_can(dotted)


def citation_range(raw: Any) -> types.Range | None:
    """A ``{start: {line, character}, end: ...}`` object from a citation, as an LSP range."""
    try:
        start, end = raw["start"], raw["end"]
        return types.Range(
            start=types.Position(line=int(start["line"]), character=int(start["character"])),
            end=types.Position(line=int(end["line"]), character=int(end["character"])),
        )
    except (KeyError, TypeError, ValueError):
        return None

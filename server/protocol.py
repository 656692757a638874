"""JSON-RPC message handling the LSP specification asks for and pygls leaves out.

pygls parses frames, dispatches and answers requests; this subclass adds what a daemon facing
arbitrary clients needs:

- malformed JSON gets ``-32700 ParseError``, a message that is not a JSON-RPC 2.0 object gets
  ``-32600 InvalidRequest``, parameters of the wrong shape get ``-32602 InvalidParams`` with the
  request's id (pygls would log them and leave the client waiting);
- requests before ``initialize`` get ``-32002 ServerNotInitialized`` and notifications other than
  ``exit`` are dropped; requests after ``shutdown`` get ``InvalidRequest``;
- parameters of ``ragls/*`` methods stay plain JSON objects (pygls would make namedtuples);
- the position encoding is UTF-8 when the client offers it, else UTF-16;
- text documents are kept by :mod:`ragls.server.documents` (LSP's line endings, not
  ``str.splitlines``), and edits to documents never opened are ignored with a log line;
- ``exit`` stops the server's loop instead of calling ``sys.exit`` inside it, so the indexer and
  the models are shut down in order.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import ResponseErrorMessage

from ragls.server.documents import UnknownDocument

if TYPE_CHECKING:
    from collections.abc import Generator

    from ragls.server.app import RaglsServer

log = logging.getLogger(__name__)


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class RaglsProtocol(LanguageServerProtocol):
    _server: RaglsServer

    def __init__(self, server: RaglsServer, converter: Any) -> None:
        super().__init__(server, converter)
        self.initialized = False

    # -- incoming frames --------------------------------------------------------------------

    def handle_frame(self, body: bytes) -> None:
        """One message body from the client; answers protocol errors itself and never raises."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            self._reply_error(None, JsonRpcParseError(f"the message is not valid JSON: {exc}"))
            return
        try:
            self._dispatch(data)
        except Exception:  # a bug of ours must not end the session
            log.exception("failed to handle a message")
            if isinstance(data, dict) and "method" in data and _valid_id(data.get("id")):
                self._reply_error(data["id"], JsonRpcException(code=-32603, message="internal error"))

    def _dispatch(self, data: Any) -> None:
        if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
            ident = data.get("id") if isinstance(data, dict) and _valid_id(data.get("id")) else None
            self._reply_error(ident, JsonRpcInvalidRequest("not a JSON-RPC 2.0 message object"))
            return
        method = data.get("method")
        has_id = "id" in data
        if method is None:
            if has_id and ("result" in data or "error" in data):
                self.handle_message(self.structure_message(data))  # the answer to one of our requests
            else:
                self._reply_error(
                    data.get("id") if _valid_id(data.get("id")) else None,
                    JsonRpcInvalidRequest("a message needs a 'method' (or is a response)"),
                )
            return
        if not isinstance(method, str) or (has_id and not _valid_id(data["id"])):
            self._reply_error(
                data.get("id") if _valid_id(data.get("id")) else None,
                JsonRpcInvalidRequest("'method' must be a string and 'id' a string or integer"),
            )
            return
        if not has_id:
            self._notification(method, data)
            return
        ident = data["id"]
        if not self.initialized and method != types.INITIALIZE:
            self._reply_error(
                ident, JsonRpcServerNotInitialized(f"{method}: the server is not initialized yet")
            )
            return
        if self.initialized and method == types.INITIALIZE:
            self._reply_error(ident, JsonRpcInvalidRequest("initialize was already received"))
            return
        if self._shutdown:
            self._reply_error(ident, JsonRpcInvalidRequest(f"{method}: the server is shutting down"))
            return
        try:
            message = self._structure(method, data, JsonRPCRequestMessage)
        except JsonRpcException as exc:
            self._reply_error(ident, JsonRpcInvalidParams(f"{method}: invalid params ({_cause(exc)})"))
            return
        self.handle_message(message)

    def _notification(self, method: str, data: dict) -> None:
        if method != types.EXIT and (not self.initialized or self._shutdown):
            log.info("dropped %s: %s", method, "not initialized" if not self.initialized else "shutting down")
            return
        try:
            message = self._structure(method, data, JsonRPCNotification)
        except JsonRpcException as exc:
            log.warning("dropped %s with invalid params: %s", method, _cause(exc))
            return
        self.handle_message(message)

    def _structure(self, method: str, data: dict, generic: type) -> Any:
        """LSP methods become lsprotocol types; ours keep their params as plain JSON."""
        if method in types.METHOD_TO_TYPES:
            return self.structure_message(data)
        fields = {"method": method, "jsonrpc": "2.0", "params": data.get("params")}
        return generic(id=data["id"], **fields) if generic is JsonRPCRequestMessage else generic(**fields)

    def _reply_error(self, ident: Any, error: JsonRpcException) -> None:
        log.warning("answered %s with error %s: %s", ident, error.code, error.message)
        self._send_data(ResponseErrorMessage(id=ident, error=error.to_response_error()))

    # -- lifecycle --------------------------------------------------------------------------

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        general = params.capabilities.general
        offered = list(general.position_encodings or []) if general else []
        if general is not None:
            general.position_encodings = ["utf-8"] if "utf-8" in offered else ["utf-16"]
        result = yield from super().lsp_initialize(params)
        self._server.documents.encoding = "utf-8" if "utf-8" in offered else "utf-16"
        self._server.adjust_capabilities(result.capabilities)
        self.initialized = True
        return result

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:
        self._server.stop(0 if self._shutdown else 1)

    # -- text documents (ours, not pygls' workspace) ----------------------------------------

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Generator:
        self._server.documents.open(params.text_document)
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Generator:
        try:
            self._server.documents.change(params)
        except UnknownDocument:
            log.warning("ignored an edit to %s, which was never opened", params.text_document.uri)
            return
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Generator:
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)
        self._server.documents.close(params.text_document.uri)

    def _user_handler(self, method: str, params: Any) -> Generator:
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None


def _cause(exc: BaseException) -> str:
    """The innermost message of a structuring failure (cattrs nests them)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]

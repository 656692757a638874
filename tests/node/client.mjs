// A second, independent client: Microsoft's vscode-jsonrpc / vscode-languageserver-protocol
// (the stack VS Code's language client is built on) drives `ragls serve` through
// initialize -> didOpen -> inlineCompletion -> codeAction -> executeCommand -> shutdown,
// then prints what it saw as one JSON object for the Python test to check.
//
//   node client.mjs PYTHON ROOT FILE SETTINGS_JSON
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import {
  ApplyWorkspaceEditRequest,
  CodeActionRequest,
  ConfigurationRequest,
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  RegistrationRequest,
  ShowDocumentRequest,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
} from "vscode-languageserver-protocol/node";

const [python, root, file, settings] = process.argv.slice(2);
const server = spawn(python, ["-m", "ragls", "serve"], { stdio: ["pipe", "pipe", "inherit"] });
const exited = new Promise((resolve) => server.on("exit", (code) => resolve(code)));
const connection = createProtocolConnection(
  new StreamMessageReader(server.stdout),
  new StreamMessageWriter(server.stdin),
);

const seen = { progress: [], deltas: [], edits: 0 };
connection.onRequest(WorkDoneProgressCreateRequest.type, () => null);
connection.onRequest(ConfigurationRequest.type, (params) => params.items.map(() => null));
connection.onRequest(RegistrationRequest.type, () => null);
connection.onRequest(ShowDocumentRequest.type, () => ({ success: true }));
connection.onRequest(ApplyWorkspaceEditRequest.type, () => {
  seen.edits += 1;
  return { applied: true };
});
connection.onNotification("$/progress", (params) => seen.progress.push(params.value.kind));
connection.onNotification("ragls/chatDelta", (params) => seen.deltas.push(params));
connection.listen();

const rootUri = pathToFileURL(root).href;
const init = await connection.sendRequest(InitializeRequest.type, {
  processId: process.pid,
  rootUri,
  workspaceFolders: [{ uri: rootUri, name: "root" }],
  capabilities: {
    general: { positionEncodings: ["utf-16"] },
    window: { workDoneProgress: true, showDocument: { support: true } },
    workspace: { applyEdit: true, workspaceEdit: { documentChanges: true }, configuration: true },
    textDocument: {
      synchronization: { dynamicRegistration: false },
      inlineCompletion: { dynamicRegistration: false },
      codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ["refactor"] } } },
    },
  },
  initializationOptions: JSON.parse(settings),
});
await connection.sendNotification(InitializedNotification.type, {});

for (let tries = 0; ; tries += 1) {
  const status = await connection.sendRequest("ragls/indexStatus", {});
  if (status.workspaces.every((w) => w.state === "ready")) break;
  if (tries > 1200) throw new Error("indexing did not finish");
  await new Promise((resolve) => setTimeout(resolve, 100));
}

const uri = pathToFileURL(file).href;
const text = readFileSync(file, "utf8");
await connection.sendNotification(DidOpenTextDocumentNotification.type, {
  textDocument: { uri, languageId: "python", version: 1, text },
});
const lines = text.split("\n");
const last = lines.length - 1;
const inline = await connection.sendRequest(InlineCompletionRequest.type, {
  textDocument: { uri },
  position: { line: last, character: lines[last].length },
  context: { triggerKind: InlineCompletionTriggerKind.Invoked },
});
const cursor = { line: 0, character: 0 };
const actions = await connection.sendRequest(CodeActionRequest.type, {
  textDocument: { uri },
  range: { start: cursor, end: cursor },
  context: { diagnostics: [] },
});
const explain = actions.find((action) => action.kind === "refactor.ragls.explain");
const result = await connection.sendRequest(ExecuteCommandRequest.type, explain.command);
await connection.sendRequest(ShutdownRequest.type);
await connection.sendNotification(ExitNotification.type);
const exitCode = await exited;

const streamed = seen.deltas.filter((d) => d.chatId === result.chatId && !d.done).map((d) => d.delta).join("");
console.log(JSON.stringify({
  capabilities: init.capabilities,
  inline,
  actionKinds: actions.map((action) => action.kind),
  explain: { answer: result.answer, output: result.output, path: result.path, streamed },
  progress: seen.progress,
  edits: seen.edits,
  exitCode,
}));

/**
 * The extension's protocol module against the real `ragls serve` over stdio, through
 * vscode-languageserver-protocol / vscode-jsonrpc (what VS Code's LanguageClient is built on).
 * The harness below only plays the LanguageClient's plumbing (the LSP handshake, routing
 * `$/progress`, answering server requests); what is checked is the extension's own code:
 * ServerProcess, serverSettings, Chat, IndexStatus, recipes and recipeCommand, and the models
 * quick pick's models, modelItem, rolesFor and useModel.
 *
 * Run with `npm test`; `ragls` (or RAGLS_COMMAND) must be on PATH. The session uses fast
 * settings (greedy sampling, short answers, no dense layer) on a copy of tests/fixtures/minirepo.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ApplyWorkspaceEditRequest,
  ConfigurationRequest,
  createProtocolConnection,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  RegistrationRequest,
  ShowDocumentRequest,
  ShowMessageNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
  type ApplyWorkspaceEditParams,
  type ClientCapabilities,
  type ProtocolConnection,
  type ShowMessageParams,
} from 'vscode-languageserver-protocol/node';
import {
  Chat,
  IndexStatus,
  ServerProcess,
  declareRaglsNotifications,
  inlineAllowed,
  modelItem,
  models,
  recipeCommand,
  recipes,
  rolesFor,
  serverSettings,
  useModel,
  spansOf,
  type ChatDelta,
  type ProgressValue,
  type Turn,
} from '../protocol';
import { arenaHtml, askArena, VOTES, voteArena } from '../arena';

const COMMAND = process.env.RAGLS_COMMAND ?? 'ragls';
const FIXTURE = path.resolve(__dirname, '../../../../tests/fixtures/minirepo');
const TYPED = 'def add(a, b):\n    return a +';

/** A folder of GGUF files for models.search_paths: the bundled model under another name. */
const MODELS = mkdtempSync(path.join(tmpdir(), 'ragls-models-'));
mkdirSync(path.join(MODELS, 'chat'));
symlinkSync(
  execFileSync('python', ['-c', 'from ragls.llm.gguf import bundled_model_path; print(bundled_model_path())'])
    .toString()
    .trim(),
  path.join(MODELS, 'chat', 'tiny-chat.gguf'),
);

/** The settings as VS Code would hold them (dotted keys), the client's own one included. */
const FAST: [string, unknown][] = [
  ['models.search_paths', [MODELS]],
  ['client.serverPath', COMMAND],
  ['index.embeddings', false],
  ['models.chat.temperature', 0],
  ['models.chat.context_length', 2048],
  ['models.completion.temperature', 0],
  ['models.completion.context_length', 2048],
  ['recipes.answer_tokens', 48],
  ['recipes.context_tokens', 512],
  ['server.debounce_ms', 0],
  // The arena's second model: a re-quantised copy of the bundled one (tests/editors/test_vscode.py).
  ['arena.models', ['chat', process.env.RAGLS_ARENA_MODEL]],
];

/** A git work tree holding a fresh copy of the fixture. */
function newRepo(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'ragls-vscode-'));
  cpSync(FIXTURE, root, { recursive: true });
  execFileSync('git', ['init', '-q'], { cwd: root });
  return root;
}

/** Poll `check` until it returns a value, or fail naming `what`. */
async function until<T>(check: () => T | undefined | Promise<T | undefined>, what: string, seconds = 240): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One `ragls serve` with the client side the LanguageClient would provide, wired to the
 * extension's Chat and IndexStatus. */
class Session {
  readonly connection: ProtocolConnection;
  readonly edits: ApplyWorkspaceEditParams[] = [];
  readonly messages: ShowMessageParams[] = [];
  readonly statusTexts: string[] = [];
  readonly status = new IndexStatus(() => this.statusTexts.push(this.status.describe().text));

  private constructor(
    readonly server: ServerProcess,
    readonly root: string,
    readonly chat: Chat,
  ) {
    const child = server.child;
    this.connection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    const settings = serverSettings(FAST);
    this.connection.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
    this.connection.onNotification('$/progress', ({ token, value }: { token: string | number; value: ProgressValue }) =>
      this.status.progress(token, value),
    );
    this.connection.onRequest(ConfigurationRequest.type, (params) => params.items.map(() => settings));
    this.connection.onRequest(RegistrationRequest.type, () => undefined);
    this.connection.onRequest(ShowDocumentRequest.type, () => ({ success: true }));
    this.connection.onRequest(ApplyWorkspaceEditRequest.type, (params) => {
      this.edits.push(params);
      return { applied: true };
    });
    this.connection.onNotification(ShowMessageNotification.type, (params) => {
      this.messages.push(params);
    });
    chat.listen(this.connection);
    this.connection.listen();
  }

  /** Start the server on `root` and initialize it as the extension does; `chat` carries over. */
  static async open(root: string, chat: Chat): Promise<Session> {
    const session = new Session(await ServerProcess.start(COMMAND, ['serve'], { cwd: root }), root, chat);
    const capabilities: ClientCapabilities = {
      window: { workDoneProgress: true, showDocument: { support: true } },
      workspace: { applyEdit: true, workspaceEdit: { documentChanges: true }, configuration: true },
      textDocument: { synchronization: { dynamicRegistration: false }, inlineCompletion: {} },
    };
    declareRaglsNotifications(capabilities);
    const rootUri = pathToFileURL(root).href;
    await session.connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: 'repo' }],
      capabilities,
      initializationOptions: serverSettings(FAST),
    });
    await session.connection.sendNotification(InitializedNotification.type, {});
    return session;
  }

  /** Wait until every workspace is indexed (by `ragls/indexStatus`, as the status bar asks). */
  async ready(): Promise<void> {
    await until(async () => {
      const workspaces = await this.status.refresh(this.connection);
      return workspaces.length > 0 && workspaces.every((w) => w.state === 'ready');
    }, 'the index');
  }

  async open(relative: string, text: string) {
    const uri = pathToFileURL(path.join(this.root, relative)).href;
    await this.connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: 'python', version: 1, text },
    });
    return uri;
  }

  async close(): Promise<void> {
    await this.connection.sendRequest(ShutdownRequest.type);
    await this.connection.sendNotification(ExitNotification.type);
    this.connection.dispose();
  }
}

/** Wait for `turn` to finish; its final message. */
async function answered(turn: Turn): Promise<ChatDelta> {
  return until(() => (turn.done ? turn.final : undefined), `the answer to ${JSON.stringify(turn.question)}`);
}

/** Each span points into a real file of the repository, at lines it has. */
function assertRealSpans(final: ChatDelta): void {
  const spans = spansOf(final);
  assert.ok(spans.length > 0, `no citations or results in ${JSON.stringify(final)}`);
  for (const span of spans) {
    const file = fileURLToPath(span.uri);
    assert.ok(existsSync(file), `${span.uri} does not exist`);
    const lines = readFileSync(file, 'utf8').split('\n').length;
    assert.ok(span.range.start.line <= span.range.end.line && span.range.end.line <= lines, JSON.stringify(span));
  }
}

describe('the extension against ragls serve', () => {
  let session: Session;
  let renders = 0;
  const chat = new Chat(() => (renders += 1));

  before(async () => {
    session = await Session.open(newRepo(), chat);
    await session.ready();
  });
  after(() => session?.close());

  test('settings the user set reach the server in its shape; client.* and unset ones stay', async () => {
    assert.deepEqual(serverSettings([['client.serverPath', 'x'], ['privacy.mode', undefined], ['index.embeddings', false]]), {
      index: { embeddings: false },
    });
    const audit = () => session.connection.sendRequest<{ mode: string }>('ragls/privacyAudit', {});
    assert.equal((await audit()).mode, 'local');
    await session.connection.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { ragls: serverSettings([...FAST, ['privacy.mode', 'zero-retention']]) },
    });
    await until(async () => (await audit()).mode === 'zero-retention', 'the new privacy mode');
    await session.connection.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { ragls: serverSettings(FAST) },
    });
    await until(async () => (await audit()).mode === 'local', 'the privacy mode back to local');
    // initializationOptions, the pulled section and the changes were all accepted: no complaint
    assert.deepEqual(session.messages, []);
  });

  test('the status bar follows $/progress while indexing, then ragls/indexStatus', () => {
    assert.ok(session.statusTexts.some((text) => text.startsWith('$(sync~spin) ragls')), session.statusTexts.join(' | '));
    const { text, tooltip } = session.status.describe();
    assert.equal(text, '$(check) ragls');
    assert.match(tooltip, /: ready, [1-9]\d* files, [1-9]\d* chunks/);
    assert.match(tooltip, new RegExp(path.basename(session.root)));
  });

  test('inline completion for an unsaved file (not on disk); huge files get none', async () => {
    const uri = await session.open('shop/calc.py', TYPED);
    const items = await session.connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri },
      position: { line: 1, character: TYPED.split('\n')[1].length },
      context: { triggerKind: InlineCompletionTriggerKind.Invoked },
    });
    const list = Array.isArray(items) ? items : (items?.items ?? []);
    assert.equal(list.length, 1);
    assert.equal(list[0].insertText, ' b'); // greedy SmolLM2, as in the Emacs suite
    assert.ok(inlineAllowed(TYPED.length, 2e6));
    assert.ok(!inlineAllowed(3e6, 2e6));
  });

  test('a question streams into the chat, its citations point at real code, follow-ups continue it', async () => {
    const before = renders;
    const turn = await chat.ask(session.connection, 'What does SmtpMailer do when it sends a message?');
    const final = await answered(turn);
    assert.equal(final.error, undefined);
    assert.equal(final.route, 'answer');
    assert.ok(turn.text.trim().length > 0);
    assert.ok(renders - before > 2, `the view was rendered ${renders - before} times: no streaming`);
    assertRealSpans(final);
    assert.ok(spansOf(final).some((span) => span.path.endsWith('mailer.py')), JSON.stringify(spansOf(final)));

    const followUp = await chat.ask(session.connection, 'SmtpMailer');
    assert.equal(followUp.chatId, turn.chatId);
    assert.equal(followUp.turn, turn.turn + 1);
    const search = await answered(followUp);
    assert.equal(search.route, 'search');
    assertRealSpans(search);
    assert.deepEqual(chat.turns.slice(-2), [turn, followUp]);
  });

  test('Stop cancels the answer being generated', async () => {
    const turn = await chat.ask(session.connection, 'Explain in detail how Cart computes the total with tax and discounts.');
    assert.equal(await chat.cancel(session.connection), true);
    const final = await answered(turn);
    assert.equal(final.cancelled, true);
    assert.equal(await chat.cancel(session.connection), false); // nothing left to stop
  });

  test('the arena: two models answer blind, the vote reveals their names and is recorded', async () => {
    assert.ok(process.env.RAGLS_ARENA_MODEL, 'RAGLS_ARENA_MODEL must name a second GGUF file');
    const match = await askArena(session.connection, 'how is a discount applied?');
    assert.deepEqual(Object.keys(match).sort(), ['a', 'b', 'context', 'id', 'kind', 'question']);
    const page = arenaHtml(match);
    assert.match(page, /<h2>A<\/h2>[\s\S]*<h2>B<\/h2>/);
    assert.doesNotMatch(page, /SmolLM2/); // no names before the vote
    assert.deepEqual(VOTES.map((v) => v.vote), ['a', 'b', 'tie', 'both_bad']);
    const verdict = await voteArena(session.connection, match, 'tie');
    assert.deepEqual([verdict.a, verdict.b].sort(), ['SmolLM2-135M-Instruct.Q4_0', 'SmolLM2-135M-Instruct.Q4_1']);
    assert.match(arenaHtml(match, verdict), new RegExp(`<h2>A: ${verdict.a.replace(/\./g, '\\.')}</h2>`));
    const lines = readFileSync(verdict.votesFile, 'utf8').trim().split('\n');
    const record = JSON.parse(lines[lines.length - 1]) as { vote: string; a: unknown; b: unknown };
    assert.deepEqual([record.vote, record.a, record.b], ['tie', { model: verdict.a, answer: match.a }, { model: verdict.b, answer: match.b }]);
    await assert.rejects(voteArena(session.connection, match, 'a'), /not yet voted on/);
  });

  test('recipes: listed for the palette, run like a code action, text streams and edits come back', async () => {
    const uri = await session.open('shop/cart.py', readFileSync(path.join(session.root, 'shop/cart.py'), 'utf8'));
    const { recipes: list } = await recipes(session.connection, uri);
    const names = list.map((r) => r.name);
    for (const name of ['explain', 'docstring', 'unit-test']) assert.ok(names.includes(name), names.join());

    const cursor = { line: 15, character: 8 }; // inside Cart.subtotal
    chat.expect('explain: shop/cart.py');
    const explained = (await session.connection.sendRequest(
      ExecuteCommandRequest.type,
      recipeCommand('explain', uri, { start: cursor, end: cursor }),
    )) as ChatDelta;
    const turn = chat.turns.find((t) => t.chatId === explained.chatId)!;
    assert.equal(turn.question, 'explain: shop/cart.py');
    assert.ok(turn.done && turn.text.trim().length > 0, JSON.stringify(turn));
    assert.equal(turn.text, explained.answer);

    const edits = session.edits.length;
    await session.connection.sendRequest(ExecuteCommandRequest.type, recipeCommand('docstring', uri, { start: cursor, end: cursor }));
    assert.equal(session.edits.length, edits + 1);
    assert.match(JSON.stringify(session.edits[edits].edit), new RegExp(uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  test('models: the quick pick lists what is on this machine, and a picked model is used for a role', async () => {
    const { models: found } = await models(session.connection);
    const mine = found.find((m) => m.source === 'search-path' && m.name === 'tiny-chat');
    assert.ok(mine, JSON.stringify(found));
    assert.deepEqual(modelItem(mine), {
      label: 'tiny-chat',
      description: '[search-path] llama 135M Q4_1 8192-token window',
      detail: path.join(MODELS, 'chat', 'tiny-chat.gguf'),
    });
    assert.deepEqual(rolesFor(mine), ['chat', 'completion']);
    const used = await useModel(session.connection, mine, 'completion');
    assert.equal(used.role, 'completion');
    // the file is written by its real path (a link's target), so moving the link changes nothing
    const written = `[models.completion]\nprovider = "llama_cpp"\npath = ${JSON.stringify(realpathSync(mine.path!))}\n`;
    assert.ok(readFileSync(used.config, 'utf8').includes(written), readFileSync(used.config, 'utf8'));
    await assert.rejects(useModel(session.connection, mine, 'embedding'), /sentence-transformers/);
  });
});

describe('starting and restarting the server', () => {
  test('a missing binary is reported with the command', async () => {
    await assert.rejects(
      ServerProcess.start('/nonexistent/ragls', ['serve']),
      /cannot run `\/nonexistent\/ragls serve` \(spawn \/nonexistent\/ragls ENOENT\).*ragls\.client\.serverPath/,
    );
  });

  test('a server crashing at start is explained with the command and what it printed', async () => {
    const server = await ServerProcess.start(COMMAND, ['serve', '--no-such-option']);
    const connection = createProtocolConnection(
      new StreamMessageReader(server.child.stdout!),
      new StreamMessageWriter(server.child.stdin!),
    );
    // the LanguageClient fails its start when the connection closes before initialize is answered
    const closed = new Promise<Error>((resolve) => connection.onClose(() => resolve(new Error('connection closed'))));
    connection.listen();
    const initialize = connection.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {} });
    const failed = await Promise.race([initialize.then(() => assert.fail('initialize succeeded')), closed]);
    const message = await server.failure(failed);
    assert.match(message, /`ragls serve --no-such-option` failed to start: it exited \(2\)/);
    assert.match(message, /unrecognized arguments: --no-such-option/);
    connection.dispose();
  });

  test('after the server dies the chat keeps its transcript and continues on the new server', async () => {
    const root = newRepo();
    const chat = new Chat(() => undefined);
    const first = await Session.open(root, chat);
    await first.ready();
    const before = await answered(await chat.ask(first.connection, 'SmtpMailer'));
    first.server.child.kill('SIGKILL');
    await until(() => first.server.exit !== undefined, 'the server to die');
    first.connection.dispose();
    chat.serverRestarted(); // what the extension does when the LanguageClient has restarted it
    assert.equal(chat.chatId, undefined);

    const second = await Session.open(root, chat);
    try {
      await second.ready();
      const after = await answered(await chat.ask(second.connection, 'SmtpMailer'));
      assert.equal(chat.turns.length, 2);
      assert.equal(chat.turns[0].final, before);
      assertRealSpans(after);
    } finally {
      await second.close();
    }
  });
});

/**
 * What the extension says to `ragls serve` and how it reads the answers: starting the server,
 * the settings it forwards, chat turns built from `ragls/chatDelta`, recipes, and the index status
 * from `$/progress` and `ragls/indexStatus`. Nothing here imports `vscode`, so the Node tests drive
 * the real server with this very code over vscode-jsonrpc, the library VS Code's LanguageClient is
 * built on; `Connection` fits both.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import type {
  ClientCapabilities,
  Disposable,
  Range,
  WorkDoneProgressBegin,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
} from 'vscode-languageserver-protocol';

/** The part of a JSON-RPC connection the extension uses (LanguageClient and MessageConnection). */
export interface Connection {
  sendRequest<R>(method: string, params?: unknown): Promise<R>;
  onNotification<P>(method: string, handler: (params: P) => void): Disposable;
}

/** Documents the server gets: local files, saved or not. ragls serves files inside a workspace
 * folder, so remote (`vscode-remote:`), virtual (`git:`, `vscode-vfs:`) and `untitled:` buffers are
 * never sent. */
export const DOCUMENT_SELECTOR = [{ scheme: 'file' }];

/** Added to the client's capabilities: the server streams answers as `ragls/chatDelta` to clients
 * that declare it (others get a `window/showMessage`), and says when the completion model it is
 * loading is ready (`ragls/modelState`). */
export function declareRaglsNotifications(capabilities: ClientCapabilities): void {
  capabilities.experimental = {
    ...(capabilities.experimental as object | undefined),
    ragls: { chatDelta: true, modelState: true },
  };
}

/** `ragls/modelState`: the completion model is loading, or its load ended. */
export interface ModelState {
  role: string;
  state: 'loading' | 'ready' | 'failed';
}

/** Whether a document of `length` characters gets inline completion: a huge file would be
 * re-sent and re-read on every keystroke for nothing. */
export function inlineAllowed(length: number, maxChars: number): boolean {
  return length <= maxChars;
}

// ---- settings ---------------------------------------------------------------------------------

/** Settings in the config file's shape, e.g. `{privacy: {mode: "local"}}`. */
export type Settings = { [key: string]: unknown };

/** The `ragls.*` settings the user set (dotted keys, VS Code's shape) as the server's nested
 * settings. `client.*` settings are the extension's own and stay here. Only values the user set
 * are sent, so the ragls config files keep deciding everything else. */
export function serverSettings(entries: Iterable<[string, unknown]>): Settings {
  const settings: Settings = {};
  for (const [key, value] of entries) {
    const parts = key.split('.');
    if (parts[0] === 'client' || value === undefined) continue;
    let node = settings;
    for (const part of parts.slice(0, -1)) {
      node = (node[part] ??= {}) as Settings;
    }
    node[parts[parts.length - 1]] = value;
  }
  return settings;
}

// ---- starting the server -----------------------------------------------------------------------

/** A started `ragls serve`, with the end of its stderr kept to explain a crash. */
export class ServerProcess {
  private stderr = '';
  /** The exit code (or signal name) once it exited. */
  exit: number | string | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly commandLine: string,
  ) {
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      this.exit = code ?? signal ?? undefined;
    });
  }

  /** Spawn `command serve`; rejects with a message naming the command when it cannot run at all
   * (missing, not executable). */
  static start(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    const commandLine = [command, ...args].join(' ');
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: 'pipe' });
    return new Promise<ServerProcess>((resolve, reject) => {
      child.once('spawn', () => resolve(new ServerProcess(child, commandLine)));
      child.once('error', (error: Error) =>
        reject(new Error(`ragls: cannot run \`${commandLine}\` (${error.message}). ${PATH_HINT}`)),
      );
    });
  }

  /** Why the session could not start, naming the command and quoting what it printed. The
   * connection often closes a moment before the exit is reported, so this waits a little for it. */
  async failure(error: unknown): Promise<string> {
    if (this.exit === undefined && this.child.exitCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const reason = this.exit !== undefined ? `it exited (${this.exit})` : `${(error as Error)?.message ?? error}`;
    const said = this.stderr.trim().split('\n').slice(-5).join('\n');
    return `ragls: \`${this.commandLine}\` failed to start: ${reason}.${said ? `\n${said}` : ''}\n${PATH_HINT}`;
  }
}

const PATH_HINT = 'Set "ragls.client.serverPath" to the ragls executable (e.g. the one in your venv\'s bin).';

// ---- chat --------------------------------------------------------------------------------------

/** A span of code an answer cites or a search found. */
export interface CodeSpan {
  path: string;
  uri: string;
  startLine: number;
  endLine: number;
  range: Range;
}

/** A `ragls/chatDelta` notification: pieces of text, then one final message (`done`). */
export interface ChatDelta {
  chatId: string;
  turn: number;
  delta?: string;
  done?: boolean;
  route?: 'answer' | 'search';
  answer?: string;
  citations?: CodeSpan[];
  sources?: CodeSpan[];
  results?: (CodeSpan & { score?: number; symbol?: string })[];
  notes?: string[];
  cancelled?: boolean;
  error?: string;
  title?: string;
  applied?: boolean;
}

/** One question (or recipe run) and its answer as it streams. */
export interface Turn {
  chatId: string;
  turn: number;
  question: string;
  text: string;
  done: boolean;
  final?: ChatDelta;
}

/** The chat transcript. It outlives server restarts: the extension keeps it and the view only
 * shows it, so a restart (or a hidden view) loses nothing already answered. */
export class Chat {
  readonly turns: Turn[] = [];
  /** The conversation follow-up questions continue (none after a restart). */
  chatId: string | undefined;
  /** Shown as the question of the next turn the server starts on its own (a recipe run). */
  private nextLabel: string | undefined;

  constructor(private readonly changed: () => void) {}

  /** Route `ragls/chatDelta` from `connection` here. */
  listen(connection: Connection): Disposable {
    return connection.onNotification<ChatDelta>('ragls/chatDelta', (delta) => this.handle(delta));
  }

  /** Ask `question` (about a selection when `about` is given) in the current conversation. */
  async ask(connection: Connection, question: string, about?: { uri: string; range?: Range }): Promise<Turn> {
    const { chatId, turn } = await connection.sendRequest<{ chatId: string; turn: number }>('ragls/chat', {
      question,
      chatId: this.chatId,
      ...about,
    });
    this.chatId = chatId;
    const entry = this.turnFor(chatId, turn);
    entry.question = question;
    this.changed();
    return entry;
  }

  /** Stop the turn being answered. */
  async cancel(connection: Connection): Promise<boolean> {
    const open = this.turns.find((t) => !t.done);
    if (!open) return false;
    const { cancelled } = await connection.sendRequest<{ cancelled: boolean }>('ragls/cancelChat', {
      chatId: open.chatId,
    });
    return cancelled;
  }

  /** Label the turn the next recipe run streams into. */
  expect(label: string): void {
    this.nextLabel = label;
  }

  /** Start a new conversation (the transcript stays). */
  newConversation(): void {
    this.chatId = undefined;
  }

  /** The server was restarted: its conversations are gone, so unfinished turns end here. */
  serverRestarted(): void {
    this.chatId = undefined;
    for (const turn of this.turns.filter((t) => !t.done)) {
      turn.done = true;
      turn.final = { chatId: turn.chatId, turn: turn.turn, done: true, notes: ['the server restarted'] };
    }
    this.changed();
  }

  handle(delta: ChatDelta): void {
    const entry = this.turnFor(delta.chatId, delta.turn);
    if (delta.done) {
      entry.done = true;
      entry.final = delta;
      entry.text = delta.answer ?? entry.text;
      if (delta.title && entry.question === '') entry.question = delta.title;
    } else if (delta.delta) {
      entry.text += delta.delta;
    }
    this.changed();
  }

  /** The turn for this id, created when deltas come first (recipes, or before `ask` returns). */
  private turnFor(chatId: string, turn: number): Turn {
    let entry = this.turns.find((t) => t.chatId === chatId && t.turn === turn);
    if (!entry) {
      entry = { chatId, turn, question: this.nextLabel ?? '', text: '', done: false };
      this.nextLabel = undefined;
      this.turns.push(entry);
    }
    return entry;
  }
}

/** The spans to offer under an answer: its citations, else what it was given or found. */
export function spansOf(final: ChatDelta | undefined): CodeSpan[] {
  if (!final) return [];
  if (final.citations?.length) return final.citations;
  return final.route === 'search' ? (final.results ?? []) : (final.sources ?? []);
}

// ---- recipes -----------------------------------------------------------------------------------

export interface Recipe {
  name: string;
  title: string;
  description: string;
  output: 'text' | 'edit' | 'file';
}

/** The recipes of the document's workspace, and recipe files that failed to load. */
export async function recipes(connection: Connection, uri?: string) {
  return connection.sendRequest<{ recipes: Recipe[]; problems: { path: string; line: number; message: string }[] }>(
    'ragls/recipes',
    { uri },
  );
}

/** The `ragls.runRecipe` command's argument: the code action's shape, so a recipe picked in the
 * palette runs exactly like one picked from the light bulb (edits come back as applyEdit). */
export function recipeCommand(recipe: string, uri: string, range?: Range) {
  return { command: 'ragls.runRecipe', arguments: [{ recipe, uri, range }] };
}

// ---- models on this machine -------------------------------------------------------------------

/** One model `ragls/models` found: a GGUF file (`path`) or a model a loopback server serves
 * (`base_url`). Facts the scan could not learn are null. */
export interface FoundModel {
  name: string;
  source: string;
  family: string | null;
  size: string | null;
  quantisation: string | null;
  context_length: number | null;
  fim: string | null;
  path: string | null;
  base_url: string | null;
}

/** The models on this machine (GGUF files in the usual places, loopback servers), and what was
 * looked at and could not be used. */
export async function models(connection: Connection) {
  return connection.sendRequest<{ models: FoundModel[]; skipped: string[] }>('ragls/models', {});
}

/** A quick pick row: the name, then where it is and what it is, then the file or server. */
export function modelItem(model: FoundModel): { label: string; description: string; detail: string } {
  const fim = model.fim ? `FIM ${model.fim}` : null;
  const context = model.context_length ? `${model.context_length}-token window` : null;
  const facts = [model.family, model.size, model.quantisation, context, fim].filter((x) => x);
  return { label: model.name, description: `[${model.source}] ${facts.join(' ')}`, detail: model.path ?? model.base_url ?? '' };
}

/** The roles a model can take: sentence-transformers models embed; GGUF files and servers generate. */
export function rolesFor(model: FoundModel): string[] {
  return model.family === 'sentence-transformers' ? ['embedding'] : ['chat', 'completion'];
}

/** Make `role` use `model`: the server writes the user config and uses it at once. A file is
 * named by its path (two files may share a name), a served model by its name and source. */
export async function useModel(connection: Connection, model: FoundModel, role: string) {
  return connection.sendRequest<{ model: FoundModel; role: string; config: string }>('ragls/useModel', {
    name: model.path ?? model.name,
    role,
    from: model.source,
  });
}

// ---- index status ------------------------------------------------------------------------------

export interface WorkspaceStatus {
  root: string;
  files: number;
  chunks: number;
  state: 'idle' | 'indexing' | 'ready' | 'error';
  error?: string | null;
  progress?: { what: string; done: number; total: number; percentage: number } | null;
}

export type ProgressValue = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;

/** The index state for the status bar, from `$/progress` as it happens and `ragls/indexStatus`. */
export class IndexStatus {
  workspaces: WorkspaceStatus[] = [];
  private readonly runs = new Map<string | number, { title: string; message?: string; percentage?: number }>();
  /** The last `end` message (a summary or the error). */
  lastEnd: string | undefined;
  /** The completion model is loading (`ragls/modelState`): typing gets no suggestion until it is ready. */
  modelLoading = false;

  constructor(private readonly changed: () => void) {}

  /** One `$/progress` value; ragls' indexing runs are the work-done tokens titled `ragls: indexing`. */
  progress(token: string | number, value: ProgressValue): void {
    if (value.kind === 'begin') {
      this.runs.set(token, { title: value.title, message: value.message, percentage: value.percentage });
    } else if (value.kind === 'report') {
      const run = this.runs.get(token);
      if (run) Object.assign(run, { message: value.message ?? run.message, percentage: value.percentage });
    } else {
      this.runs.delete(token);
      this.lastEnd = value.message;
    }
    this.changed();
  }

  /** Ask the server for the state of every workspace. */
  async refresh(connection: Connection): Promise<WorkspaceStatus[]> {
    const status = await connection.sendRequest<{ workspaces: WorkspaceStatus[] }>('ragls/indexStatus', {});
    this.workspaces = status.workspaces;
    this.changed();
    return this.workspaces;
  }

  /** One `ragls/modelState`. */
  model({ state }: ModelState): void {
    this.modelLoading = state === 'loading';
    this.changed();
  }

  /** Forget the runs of a server that is gone. */
  reset(): void {
    this.runs.clear();
    this.modelLoading = false;
    this.workspaces = [];
    this.changed();
  }

  /** The status bar text (with a codicon) and its tooltip. */
  describe(): { text: string; tooltip: string } {
    if (this.modelLoading) {
      return {
        text: '$(loading~spin) ragls: loading model',
        tooltip: 'ragls: loading the completion model; inline suggestions start when it is ready',
      };
    }
    const run = [...this.runs.values()][0];
    if (run) {
      const pct = run.percentage !== undefined ? ` ${run.percentage}%` : '';
      return { text: `$(sync~spin) ragls${pct}`, tooltip: `${run.title}: ${run.message ?? 'starting'}` };
    }
    const lines = this.workspaces.map(
      (w) => `${w.root}: ${w.state}, ${w.files} files, ${w.chunks} chunks${w.error ? ` (${w.error})` : ''}`,
    );
    const tooltip = [...lines, this.lastEnd ?? ''].filter(Boolean).join('\n') || 'ragls: no workspace indexed yet';
    if (this.workspaces.some((w) => w.state === 'error')) return { text: '$(error) ragls', tooltip };
    if (this.workspaces.some((w) => w.state === 'indexing')) return { text: '$(sync~spin) ragls', tooltip };
    if (this.workspaces.length && this.workspaces.every((w) => w.state === 'ready')) {
      return { text: '$(check) ragls', tooltip };
    }
    return { text: '$(circle-outline) ragls', tooltip };
  }
}

/**
 * The ragls extension: starts `ragls serve` through vscode-languageclient (inline completion,
 * code actions and document sync are its standard features) and adds what LSP has no UI for:
 * the chat view, recipe commands, and the index state in the status bar. The requests and their
 * answers are handled in ./protocol, which the Node tests run against the real server.
 */

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  State,
  type LanguageClientOptions,
  type StaticFeature,
} from 'vscode-languageclient/node';
import { arenaHtml, askArena, VOTES, voteArena } from './arena';
import { ChatView } from './chatView';
import {
  Chat,
  DOCUMENT_SELECTOR,
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
  type CodeSpan,
  type ModelState,
  type Settings,
} from './protocol';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('ragls', { log: true });
  const statusItem = vscode.window.createStatusBarItem('ragls.status', vscode.StatusBarAlignment.Left);
  statusItem.name = 'ragls index';
  statusItem.command = 'ragls.showStatus';
  const status = new IndexStatus(() => {
    Object.assign(statusItem, status.describe());
    statusItem.show();
  });
  const chat: Chat = new Chat(() => view.render());
  const view = new ChatView(context.extensionUri, () => chat.turns, (message) => {
    if (message.type === 'ready') view.render();
    else if (message.type === 'ask') void ask(message.question);
    else if (message.type === 'open') void openSpan(message.span);
    else if (message.type === 'cancel') void withClient((c) => chat.cancel(c));
    else chat.newConversation();
  });
  context.subscriptions.push(
    output,
    statusItem,
    vscode.window.registerWebviewViewProvider(ChatView.id, view, { webviewOptions: { retainContextWhenHidden: true } }),
  );

  /** The `ragls.*` settings the user set, in the server's shape (client.* stays here). */
  const userSettings = (): Settings => {
    const config = vscode.workspace.getConfiguration('ragls');
    const manifest = context.extension.packageJSON as { contributes: { configuration: { properties: object } } };
    const keys = Object.keys(manifest.contributes.configuration.properties);
    return serverSettings(
      keys.map((full) => {
        const key = full.slice('ragls.'.length);
        const set = config.inspect(key);
        return [key, set?.workspaceFolderValue ?? set?.workspaceValue ?? set?.globalValue];
      }),
    );
  };

  let server: ServerProcess | undefined;
  const startServer = async () => {
    const command = vscode.workspace.getConfiguration('ragls').get<string>('client.serverPath') || 'ragls';
    server = undefined; // a failure below is this start's, not the previous server's
    server = await ServerProcess.start(command, ['serve'], { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath });
    return server.child;
  };

  const chatDelta: StaticFeature = {
    fillClientCapabilities: declareRaglsNotifications,
    initialize: () => undefined,
    getState: () => ({ kind: 'static' }),
    clear: () => undefined,
  };

  const clientOptions: LanguageClientOptions = {
    documentSelector: DOCUMENT_SELECTOR,
    outputChannel: output,
    initializationOptions: userSettings,
    middleware: {
      provideInlineCompletionItems: (document, position, inlineContext, token, next) => {
        const config = vscode.workspace.getConfiguration('ragls.client');
        const length = document.offsetAt(document.lineAt(document.lineCount - 1).range.end);
        if (!config.get<boolean>('inlineCompletion', true) || !inlineAllowed(length, config.get('maxInlineFileChars', 2e6))) {
          return undefined;
        }
        return next(document, position, inlineContext, token);
      },
      handleWorkDoneProgress: (token, params, next) => {
        status.progress(token, params);
        if (params.kind === 'end') void withClient((c) => status.refresh(c));
        next(token, params);
      },
      executeCommand: (command, args, next) => {
        if (command === 'ragls.runRecipe') {
          const { recipe, uri } = args[0] as { recipe: string; uri: string };
          chat.expect(`${recipe}: ${vscode.workspace.asRelativePath(vscode.Uri.parse(uri))}`);
          void view.reveal();
        }
        return next(command, args) as vscode.ProviderResult<unknown>;
      },
      workspace: {
        configuration: (params) => params.items.map((item) => (item.section === 'ragls' ? userSettings() : null)),
      },
    },
  };

  const newClient = () => {
    const created = new LanguageClient('ragls', 'ragls', startServer, clientOptions);
    created.registerFeature(chatDelta);
    chat.listen(created);
    created.onNotification('ragls/modelState', (model: ModelState) => {
      status.model(model);
      // Typing while the model loaded got no suggestion, and VS Code asks again only on the next
      // key: ask now, where the user is.
      const editor = vscode.window.activeTextEditor;
      if (model.state === 'ready' && editor && vscode.languages.match(DOCUMENT_SELECTOR, editor.document)) {
        void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      }
    });
    let started = false;
    created.onDidChangeState(({ newState }) => {
      if (newState === State.Running) {
        if (started) chat.serverRestarted(); // the old server's conversations are gone
        started = true;
        void status.refresh(created).catch(() => undefined);
      } else if (newState === State.Stopped) {
        status.reset();
      }
    });
    return created;
  };

  const start = async () => {
    client = newClient();
    try {
      await client.start();
    } catch (error) {
      const message = server ? await server.failure(error) : (error as Error).message;
      output.appendLine(message);
      void vscode.window.showErrorMessage(message, 'Open settings', 'Show output').then((pick) => {
        if (pick === 'Open settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'ragls.client');
        else if (pick === 'Show output') output.show();
      });
    }
  };

  async function withClient<T>(use: (c: LanguageClient) => Promise<T>): Promise<T | undefined> {
    if (client?.state !== State.Running) {
      void vscode.window.showWarningMessage('ragls: the server is not running (ragls: Restart Server starts it).');
      return undefined;
    }
    try {
      return await use(client);
    } catch (error) {
      void vscode.window.showErrorMessage(`ragls: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** The active editor's document and selection (empty: the cursor) as the server's `uri` and
   * `range`, when the server has that document. */
  const target = () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !vscode.languages.match(DOCUMENT_SELECTOR, editor.document)) return undefined;
    const { start, end, isEmpty } = editor.selection;
    const range = { start: { line: start.line, character: start.character }, end: { line: end.line, character: end.character } };
    return { uri: editor.document.uri.toString(), range, isEmpty };
  };

  async function ask(question: string, withSelection = false): Promise<void> {
    const here = target();
    await view.reveal();
    await withClient((c) =>
      chat.ask(c, question, here && { uri: here.uri, range: withSelection && !here.isEmpty ? here.range : undefined }),
    );
  }

  async function openSpan(span: CodeSpan): Promise<void> {
    const { start, end } = span.range;
    const selection = new vscode.Range(start.line, start.character, end.line, end.character);
    await vscode.window.showTextDocument(vscode.Uri.parse(span.uri), { selection, preview: false });
  }

  const askCommand = (withSelection: boolean) => async () => {
    const question = await vscode.window.showInputBox({
      prompt: withSelection ? 'Ask ragls about the selection' : 'Ask ragls about this repository',
    });
    if (question) await ask(question, withSelection);
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('ragls.ask', askCommand(false)),
    vscode.commands.registerCommand('ragls.askAboutSelection', askCommand(true)),
    vscode.commands.registerCommand('ragls.showChat', () => view.reveal()),
    vscode.commands.registerCommand('ragls.newChat', () => chat.newConversation()),
    vscode.commands.registerCommand('ragls.cancelAnswer', () => withClient((c) => chat.cancel(c))),
    vscode.commands.registerCommand('ragls.recipe', () =>
      withClient(async (c) => {
        const here = target();
        if (!here) throw new Error('open a file of the workspace to run a recipe on it');
        const { recipes: list } = await recipes(c, here.uri);
        const pick = await vscode.window.showQuickPick(
          list.map((r) => ({ label: r.title, description: r.name, detail: r.description, recipe: r })),
          { placeHolder: 'Run a ragls recipe on the selection (or the definition at the cursor)' },
        );
        if (!pick) return;
        const { command, arguments: args } = recipeCommand(pick.recipe.name, here.uri, here.range);
        await vscode.commands.executeCommand(command, ...args);
      }),
    ),
    vscode.commands.registerCommand('ragls.models', () =>
      withClient(async (c) => {
        const found = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Window, title: 'ragls: looking for models' },
          () => models(c),
        );
        if (!found.models.length) {
          throw new Error('no models found (models.search_paths in the ragls config file names folders of GGUF files)');
        }
        const pick = await vscode.window.showQuickPick(
          found.models.map((m) => ({ ...modelItem(m), model: m })),
          { placeHolder: 'Use a model already on this machine', matchOnDescription: true, matchOnDetail: true },
        );
        if (!pick) return;
        const role = await vscode.window.showQuickPick(rolesFor(pick.model), {
          placeHolder: `Use ${pick.model.name} for`,
        });
        if (!role) return;
        const used = await useModel(c, pick.model, role);
        void vscode.window.showInformationMessage(`ragls: models.${role} = ${pick.model.name} (written to ${used.config})`);
      }),
    ),
    vscode.commands.registerCommand('ragls.rebuildIndex', () =>
      withClient((c) => c.sendRequest('ragls/reindex', { uri: target()?.uri })),
    ),
    vscode.commands.registerCommand('ragls.showStatus', async () => {
      await withClient((c) => status.refresh(c));
      const pick = await vscode.window.showInformationMessage(status.describe().tooltip, 'Re-index', 'Show output');
      if (pick === 'Re-index') await vscode.commands.executeCommand('ragls.rebuildIndex');
      else if (pick === 'Show output') output.show();
    }),
    // A new client each time (not LanguageClient.restart, which reports a server that cannot
    // start with its own message and a stack trace): start() says what to fix, with buttons.
    vscode.commands.registerCommand('ragls.restartServer', async () => {
      // Only a running client can be stopped (one that failed to start throws if asked to).
      if (client?.state === State.Running) await client.dispose();
      chat.serverRestarted(); // the old server's conversations are gone
      await start();
    }),
    vscode.commands.registerCommand('ragls.arena', () =>
      withClient(async (c) => {
        const question = await vscode.window.showInputBox({ prompt: 'Arena: a question two models answer blind' });
        if (!question) return;
        const match = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: 'ragls arena: two models are answering…' },
          () => askArena(c, question, target()?.uri),
        );
        const panel = vscode.window.createWebviewPanel('ragls.arena', 'ragls arena', vscode.ViewColumn.Beside, {});
        panel.webview.html = arenaHtml(match);
        const pick = await vscode.window.showQuickPick([...VOTES], { placeHolder: 'Which answer is better?' });
        if (!pick) return void vscode.window.showInformationMessage('ragls arena: no vote, nothing recorded');
        const verdict = await voteArena(c, match, pick.vote);
        panel.webview.html = arenaHtml(match, verdict);
        void vscode.window.showInformationMessage(`ragls arena: A was ${verdict.a}, B was ${verdict.b}`);
      }),
    ),
    vscode.workspace.onDidChangeConfiguration((event) => {
      // A new server path starts the server whether or not one runs (the fix for a path that failed).
      if (event.affectsConfiguration('ragls.client.serverPath')) void vscode.commands.executeCommand('ragls.restartServer');
      else if (event.affectsConfiguration('ragls') && client?.state === State.Running) {
        void client.sendNotification(DidChangeConfigurationNotification.type, { settings: { ragls: userSettings() } });
      }
    }),
    { dispose: () => void client?.dispose() },
  );
  status.reset();
  await start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}

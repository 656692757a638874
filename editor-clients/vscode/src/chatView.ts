/**
 * The chat view: a webview in the ragls panel that shows the `Chat` transcript and sends back
 * questions and citation clicks. It holds no state of its own: every render sends the whole
 * transcript, so a view that was hidden, moved or re-created (or a restarted server) shows
 * everything answered so far.
 */

import * as vscode from 'vscode';
import { spansOf, type CodeSpan, type Turn } from './protocol';

/** What the webview script posts. */
type ViewMessage =
  | { type: 'ready' }
  | { type: 'ask'; question: string }
  | { type: 'open'; span: CodeSpan }
  | { type: 'cancel' }
  | { type: 'new' };

export class ChatView implements vscode.WebviewViewProvider {
  static readonly id = 'ragls.chat';
  private view: vscode.WebviewView | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly turns: () => Turn[],
    private readonly onMessage: (message: ViewMessage) => void,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    const script = view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js'));
    const style = view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css'));
    const csp = `default-src 'none'; script-src ${view.webview.cspSource}; style-src ${view.webview.cspSource};`;
    view.webview.html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<link rel="stylesheet" href="${style.toString()}"></head>
<body><div id="turns"></div>
<form id="ask"><textarea id="question" rows="2" placeholder="Ask about this repository (Enter sends)"></textarea>
<div class="buttons"><button type="submit">Ask</button><button type="button" id="cancel">Stop</button>
<button type="button" id="new">New chat</button></div></form>
<script src="${script.toString()}"></script></body></html>`;
    view.webview.onDidReceiveMessage((message: ViewMessage) => this.onMessage(message));
    view.onDidDispose(() => (this.view = undefined));
  }

  /** Send the transcript (with the spans to link under each answer) to the webview, if shown;
   * a new webview asks for it with `ready` once its script listens. */
  render(): void {
    const turns = this.turns().map((turn) => ({ ...turn, spans: spansOf(turn.final) }));
    void this.view?.webview.postMessage({ type: 'turns', turns });
  }

  /** Open the panel and show the view. */
  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${ChatView.id}.focus`);
  }
}

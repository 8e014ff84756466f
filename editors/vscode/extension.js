// The relance extension: starts `relance lsp` for `*.camp` files and the
// `.hbs` templates of a project. Plain JavaScript (no build step); the one
// dependency is Microsoft's LSP client, installed with `npm ci`.
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration('relance').get('server.path') || 'relance';
  const serverOptions = {
    command,
    args: ['lsp'],
    transport: TransportKind.stdio,
  };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'relance' },
      { scheme: 'file', pattern: '**/*.hbs' },
    ],
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher('**/{*.camp,*.hbs,relance.toml}'),
    },
  };
  client = new LanguageClient('relance', 'relance', serverOptions, clientOptions);
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };

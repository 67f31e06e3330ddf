// Log lines through wasi:logging; the host captures them per invocation.

import { log as emit } from 'wasi:logging/logging@0.1.0-draft';

const CONTEXT = 'plugin';

export const log = {
  trace: (message) => emit('trace', CONTEXT, String(message)),
  debug: (message) => emit('debug', CONTEXT, String(message)),
  info: (message) => emit('info', CONTEXT, String(message)),
  warn: (message) => emit('warn', CONTEXT, String(message)),
  error: (message) => emit('error', CONTEXT, String(message)),
};

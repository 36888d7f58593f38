// Preloaded with `node --import` before a server that listens on a bare port (the MCP
// reference server `@modelcontextprotocol/server-everything` calls `app.listen(PORT)`, which
// binds every interface): such a listen binds 127.0.0.1 only, so what the tests start is
// never reachable from outside the machine. A listen that names its host is left alone.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const port = args[0];
  const barePort = typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port));
  if (barePort && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args);
};

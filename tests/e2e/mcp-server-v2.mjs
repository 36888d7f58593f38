// An MCP server on the v2 TypeScript SDK (`@modelcontextprotocol/server`): `createMcpHandler`
// serves the 2026-07-28 revision (stateless Streamable HTTP: one POST endpoint, no session)
// and, for 2025-era clients, its stateless fallback. Two tools, as the reference server has
// them: `echo` and `get-env` (the server's environment as JSON). Bound to 127.0.0.1, behind
// the gateway in the end-to-end tests; the handler's web-standard face is mounted on
// node:http here (the SDK's own node adapter is not published at 2.4.0).
//
// Usage: PORT=3001 node mcp-server-v2.mjs   (prints `listening on port 3001`)
import { createServer } from 'node:http';
import { createMcpHandler, fromJsonSchema, McpServer } from '@modelcontextprotocol/server';

const port = Number(process.env.PORT ?? 3001);

function server() {
  const mcp = new McpServer({ name: 'scopegate-e2e-v2', version: '1.0.0' });
  mcp.registerTool(
    'echo',
    {
      description: 'Echoes back the input',
      inputSchema: fromJsonSchema({
        type: 'object',
        properties: { message: { type: 'string' } },
        required: ['message'],
      }),
    },
    async ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
  );
  mcp.registerTool(
    'get-env',
    { description: "Returns the server's environment variables" },
    async () => ({ content: [{ type: 'text', text: JSON.stringify(process.env, null, 2) }] }),
  );
  return mcp;
}

const handler = createMcpHandler(server, { onerror: (error) => console.error(`mcp-server-v2: ${error.message}`) });

/** node:http request -> web Request, the handler's Response -> node:http response. */
createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers,
      body: ['GET', 'HEAD'].includes(req.method) ? undefined : body,
      signal: aborted.signal,
    });
    const path = new URL(request.url).pathname;
    console.log(`mcp-server-v2: ${req.method} ${path} mcp-method=${headers.get('mcp-method') ?? '-'} mcp-name=${headers.get('mcp-name') ?? '-'} mcp-protocol-version=${headers.get('mcp-protocol-version') ?? '-'}`);
    const response = path === '/mcp'
      ? await handler.fetch(request)
      : new Response('not found', { status: 404 });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) {
      for await (const chunk of response.body) res.write(chunk);
    }
    res.end();
  } catch (error) {
    console.error(`mcp-server-v2: ${error.stack}`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
}).listen(port, '127.0.0.1', () => console.log(`mcp-server-v2: listening on port ${port}`));

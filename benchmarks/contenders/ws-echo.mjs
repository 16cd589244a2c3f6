// WebSocket origin for the websocket section: echoes every message; answers plain GETs with 200
// (so readiness checks work). Env: PORT.
import http from 'node:http'
import { WebSocketServer } from 'ws'

const server = http.createServer((_req, res) => res.end('ok'))
const wss = new WebSocketServer({ server, perMessageDeflate: false })
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })))
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(`ws-echo listening on ${server.address().port}`))
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0))

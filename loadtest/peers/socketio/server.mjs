// The Socket.IO peer of the surge benchmark: Socket.IO 4 with the Redis
// adapter, WebSocket transport only, no permessage-deflate. A client joins a
// room by emitting `sub` with its name; `POST /pub/<room>` broadcasts the body
// as a `m` event to that room on every process sharing the Redis.
//
//   PORT=18811 REDIS_URL=redis://127.0.0.1:6379 node server.mjs

import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

const port = Number(process.env.PORT);
const pub = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer((req, res) => {
  const room = /^\/pub\/([\w:.-]+)$/.exec(req.url)?.[1];
  if (req.method !== 'POST' || !room) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    io.to(room).emit('m', Buffer.concat(chunks).toString());
    res.writeHead(202).end();
  });
});
const io = new Server(http, {
  adapter: createAdapter(pub, sub),
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});
io.on('connection', (socket) => socket.on('sub', (room, ack) => {
  socket.join(String(room));
  if (typeof ack === 'function') ack(); // the client waits for this before counting itself subscribed
}));
http.listen(port, '127.0.0.1', () => console.log(`listening 127.0.0.1:${port}`));

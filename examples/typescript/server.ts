// A Socket.IO server in TypeScript with rollcall: who is online per room,
// typed events, and the metrics at /metrics. Build with `npm run build`
// (tsc, strict), run with `npm start`; REDIS_URL for a cluster (without it
// presence lives in this process), PORT for the port (default 3000).
//
// Clients connect with `auth: { userId }`, emit "join" / "leave" with a
// room name (acknowledged with the room's user count) and "who" with a
// room name (acknowledged with its users).

import { createServer } from "node:http";
import { Server, type Socket } from "socket.io";
import { createClient } from "redis";
import { Presence, type OfflineReason, type PresenceOptions } from "rollcall";

interface ClientEvents {
  join(room: string, ack: (users: number) => void): void;
  leave(room: string, ack: (users: number) => void): void;
  who(room: string, ack: (users: string[]) => void): void;
}

interface ServerEvents {
  online(userId: string): void;
  offline(userId: string, reason: OfflineReason): void;
}

/** What the auth middleware decides; rollcall reads `userId` by default. */
interface SocketData {
  userId?: string;
}

type AppSocket = Socket<ClientEvents, ServerEvents, Record<string, never>, SocketData>;

/** The user a socket claims; a real app decides it from a session or token. */
function userOf(socket: { handshake: { auth: Record<string, unknown> } }): string | undefined {
  const id = socket.handshake.auth.userId;
  return typeof id === "string" && id !== "" ? id : undefined;
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  const http = createServer();
  const io = new Server<ClientEvents, ServerEvents, Record<string, never>, SocketData>(http);
  // The server decides who a socket is (here a stand-in that believes the
  // client); rollcall reads socket.data.userId.
  io.use((socket, next) => {
    socket.data.userId = userOf(socket);
    next();
  });

  const options: PresenceOptions = {};
  const redis = process.env.REDIS_URL ? createClient({ url: process.env.REDIS_URL }) : undefined;
  if (redis) {
    redis.on("error", (e: Error) => console.error("redis:", e.message));
    await redis.connect();
    options.redis = redis;
  }
  const presence: Presence = await Presence.attach(io, options);

  // Typed events: the listener's arguments are checked against rollcall's.
  presence.on("user connected", (userId) => {
    console.log("online", userId);
    io.emit("online", userId);
  });
  presence.on("user disconnected", (userId, reason) => {
    console.log("offline", userId, reason);
    io.emit("offline", userId, reason);
  });
  presence.on("store error", (error) => console.error("rollcall:", error.message));

  io.on("connection", (socket: AppSocket) => {
    socket.on("join", async (room, ack) => {
      await socket.join(room);
      ack(await presence.usersCount({ room }));
    });
    socket.on("leave", async (room, ack) => {
      await socket.leave(room);
      ack(await presence.usersCount({ room }));
    });
    socket.on("who", async (room, ack) => ack(await presence.usersList({ room })));
  });

  // Everything else is the metrics, in the Prometheus text format.
  http.on("request", async (req, res) => {
    if (req.url?.startsWith("/socket.io/")) return;
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    try {
      const text = await presence.metrics();
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(text);
    } catch (e) {
      res.writeHead(503).end(String(e));
    }
  });

  http.listen(port, () => console.log(`listening on http://localhost:${port}`));

  const stop = async (): Promise<void> => {
    await presence.close();
    io.close();
    if (redis) await redis.quit();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

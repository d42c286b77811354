// The "who is online" page: rooms with their user counts, the members of
// the current room with their data (name, status), updated live. The
// server emits "presence" on every change of the cluster; the page then
// asks it ("state", with an ack) for what it shows.
//
// ?user=NAME is who you are; ?server=N sends the page to the Nth server of
// the cluster (the list comes from /config.json). The room and the status
// are kept per tab (sessionStorage), so a reload comes back to them.
"use strict";

(() => {
  const ROOMS = ["lobby", "design", "ops", "random"];
  const LOG_LINES = 30;
  const params = new URLSearchParams(location.search);
  const user = (params.get("user") || "").trim();
  const $ = (id) => document.getElementById(id);

  function fail(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  /** This tab's room and status (kept across a reload). */
  const KEY = `who-is-online:${user}`;
  function load() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY)) || {};
    } catch {
      return {};
    }
  }
  function save(state) {
    sessionStorage.setItem(KEY, JSON.stringify(state));
  }

  function element(tag, props = {}, children = []) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) e.append(c);
    return e;
  }

  function showLogin(config) {
    const form = $("login");
    const select = $("login-server");
    config.servers.forEach((url, i) => {
      const selected = new URL(url).origin === location.origin;
      select.append(element("option", { value: String(i + 1), text: `server ${i + 1} (${url})`, selected }));
    });
    form.hidden = false;
    $("login-name").focus();
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const next = new URLSearchParams({ user: $("login-name").value.trim(), server: select.value });
      location.search = next.toString();
    });
  }

  function start(config) {
    const saved = load();
    let room = ROOMS.includes(saved.room) ? saved.room : null;
    let status = saved.status || "online";
    let lastState = null;

    $("me").hidden = false;
    $("app").hidden = false;
    $("me-name").textContent = user;
    $("server-label").textContent = `${config.label} (${config.kind})`;
    $("status").value = status;
    document.title = `${user} · who is online`;

    const socket = io({ query: { user, status }, transports: ["websocket", "polling"] });
    const ask = (event, arg) => socket.timeout(5000).emitWithAck(event, arg);

    function setConnection(state) {
      document.body.dataset.connection = state;
      $("connection").textContent = state;
    }

    // One "state" request at a time; changes meanwhile ask once more after it.
    let inFlight = false;
    let again = false;
    async function refresh() {
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      try {
        do {
          again = false;
          const state = await ask("state", { rooms: ROOMS, room });
          if (state.error) throw new Error(state.error);
          render(state);
          // How many answers this page has shown (the tests wait on it).
          document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes) + 1);
        } while (again);
      } catch (e) {
        if (socket.connected) {
          fail(`could not read the presence: ${e.message}; trying again`);
          setTimeout(refresh, 1000);
        }
      } finally {
        inFlight = false;
      }
    }

    function render(state) {
      lastState = state;
      $("server-node").textContent = state.server.nodeId;
      const list = $("room-list");
      list.replaceChildren(
        ...ROOMS.map((r) => {
          const count = state.counts[r] ?? 0;
          const button = element("button", { type: "button" }, [
            element("span", { className: "room-name", text: `#${r}` }),
            element("span", { className: "count", text: String(count) }),
          ]);
          button.addEventListener("click", () => enter(r));
          return element("li", { className: r === room ? "current" : "", "data-room": r, "data-count": String(count) }, [button]);
        }),
      );
      $("leave").disabled = !room;
      $("room-title").textContent = room ? `Members of #${room}` : "Pick a room";
      // An answer about another room than the current one (a switch in
      // between) leaves the members as they are: the next answer is due.
      if (state.room === room) {
        const members = room ? state.members : [];
        $("members").replaceChildren(...members.map(memberItem));
        $("empty").hidden = !room || members.length > 0;
      }
      document.body.dataset.room = room || "";
    }

    // A user's data: one object per socket (tab). Within the grace period
    // a reloaded tab's old data stays until the new tab's replaces it, in
    // one write, so a reload never shows the user without a status.
    function memberItem(m) {
      const data = Array.isArray(m.data) ? m.data.filter((d) => d && typeof d === "object") : [];
      const name = (data.find((d) => d.name) || {}).name || m.userId;
      const statuses = [...new Set(data.map((d) => d.status).filter(Boolean))];
      const children = [element("span", { className: "name", text: name })];
      if (m.userId === user) children.push(element("span", { className: "you", text: "(you)" }));
      for (const s of statuses) children.push(element("span", { className: "status", "data-status": s, text: s }));
      if (m.sockets > 1) children.push(element("span", { className: "tabs", text: `${m.sockets} tabs` }));
      return element("li", { className: "member", "data-user": m.userId, "data-status": statuses.join(",") }, children);
    }

    function logChange(c) {
      const where = c.room ? ` #${c.room}` : "";
      const why = c.reason ? ` (${c.reason})` : "";
      let text = null;
      if (c.type === "online") text = `${c.userId} came online`;
      if (c.type === "offline") text = `${c.userId} went offline${why}`;
      if (c.type === "joined" && c.room) text = `${c.userId} joined${where}`;
      if (c.type === "left" && c.room) text = `${c.userId} left${where}${why}`;
      if (c.type === "updated") {
        const statuses = [...new Set((c.data || []).map((d) => d && d.status).filter(Boolean))];
        if (!statuses.length) return; // a user whose tabs set no status
        text = `${c.userId} is ${statuses.join(", ")}`;
      }
      if (!text) return;
      const at = new Date().toLocaleTimeString();
      const li = element("li", { "data-type": c.type, "data-user": c.userId, "data-reason": c.reason || "" }, [
        element("time", { text: at }),
        text,
      ]);
      const log = $("log");
      log.prepend(li);
      while (log.children.length > LOG_LINES) log.lastElementChild.remove();
    }

    async function enter(next) {
      if (next === room) return;
      const old = room;
      room = next;
      save({ room, status });
      if (lastState) render({ ...lastState, room, members: [] });
      $("empty").hidden = true;
      try {
        if (old) await ask("leave", old);
        const r = await ask("join", next);
        if (!r.ok) throw new Error(`the server refused #${next}`);
      } catch (e) {
        fail(`could not join #${next}: ${e.message}`);
      }
      refresh();
    }

    $("leave").addEventListener("click", async () => {
      if (!room) return;
      const old = room;
      room = null;
      save({ room, status });
      try {
        await ask("leave", old);
      } catch (e) {
        fail(`could not leave #${old}: ${e.message}`);
      }
      refresh();
    });

    $("status").addEventListener("change", async () => {
      status = $("status").value;
      save({ room, status });
      socket.io.opts.query.status = status; // a reconnect starts with it
      try {
        const r = await ask("status", status);
        if (!r.ok) throw new Error("refused");
      } catch (e) {
        fail(`could not set the status: ${e.message}`);
      }
      refresh();
    });

    socket.on("connect", async () => {
      setConnection("connected");
      $("error").hidden = true;
      if (room) {
        try {
          await ask("join", room);
        } catch (e) {
          fail(`could not join #${room}: ${e.message}`);
        }
      }
      refresh();
    });
    socket.on("disconnect", () => setConnection("disconnected"));
    socket.on("connect_error", (e) => {
      setConnection("disconnected");
      fail(`cannot connect: ${e.message}`);
    });
    socket.on("presence", (change) => {
      logChange(change);
      refresh();
    });
  }

  async function main() {
    const config = await (await fetch("/config.json")).json();
    const n = Number(params.get("server") || 0);
    if (n >= 1 && n <= config.servers.length) {
      const target = new URL(config.servers[n - 1]);
      if (target.origin !== location.origin) {
        location.replace(target.origin + location.pathname + location.search + location.hash);
        return;
      }
    }
    if (!user) showLogin(config);
    else start(config);
  }

  main().catch((e) => fail(`the page could not start: ${e.message}`));
})();

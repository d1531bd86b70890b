// The live chat's client: one WebSocket to the room, JSON events both ways.
// Text is shown as text (textContent), never as HTML. When the socket closes
// (the server restarted, the network dropped, the server closed it) it
// reconnects after a delay that doubles from MIN_DELAY up to MAX_DELAY, with
// some jitter so that the clients of a restarted server do not all come back
// at the same instant; it asks for the messages after the last one it has,
// so none is lost or shown twice.
"use strict";
(function () {
  const MIN_DELAY = 250;
  const MAX_DELAY = 8000;
  const list = document.getElementById("messages");
  const form = document.getElementById("chat-form");
  const status = document.getElementById("status");
  const error = document.getElementById("chat-error");
  const base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    list.dataset.socket;
  let socket = null;
  let room = null;  // the server's epoch: ids start again when it restarts
  let delay = MIN_DELAY;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }
  function lastId() {
    const items = list.querySelectorAll("li[data-id]");
    return items.length ? Number(items[items.length - 1].dataset.id) : 0;
  }
  function notice(text) {
    const li = document.createElement("li");
    li.className = "notice";
    li.textContent = text;
    list.append(li);
  }
  function show(message) {
    if (list.querySelector(`li[data-id="${message.id}"]`)) return;
    const li = document.createElement("li");
    li.dataset.id = message.id;
    const who = document.createElement("b");
    who.textContent = message.author;
    const text = document.createElement("span");
    text.textContent = message.text;
    li.append(who, ": ", text);
    list.append(li);
  }
  const handlers = {
    history(event) {
      if (event.room !== room) {  // a new server: what we have is of another room
        list.replaceChildren();
        room = event.room;
      }
      event.messages.forEach(show);
      delay = MIN_DELAY;  // a working connection: the next failure starts over
      setStatus("open", "connected");
    },
    message: show,
    join(event) { notice(`${event.name} joined`); },
    leave(event) { notice(`${event.name} left`); },
    error(event) { error.textContent = event.error; },
  };

  function connect() {
    const query = room === null ? "" : `?room=${encodeURIComponent(room)}&cursor=${lastId()}`;
    setStatus("connecting", "connecting…");
    socket = new WebSocket(base + query);
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      const handle = handlers[event.type];
      if (handle) handle(event);
    });
    socket.addEventListener("close", () => {
      const wait = delay * (0.75 + Math.random() / 2);
      delay = Math.min(delay * 2, MAX_DELAY);
      setStatus("closed", `disconnected; trying again in ${(wait / 1000).toFixed(1)} s`);
      setTimeout(connect, wait);
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      error.textContent = "not connected; try again in a moment";
      return;
    }
    socket.send(JSON.stringify({text: form.text.value}));
    form.text.value = "";
    error.textContent = "";
  });
  connect();
})();

// The room's client: one WebSocket to /socket, JSON both ways; each message
// is shown as text (textContent), never as markup.
"use strict";
(function () {
  const list = document.getElementById("messages");
  const form = document.getElementById("chat");
  const status = document.getElementById("status");
  const error = document.getElementById("error");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/socket");

  socket.addEventListener("open", () => { status.textContent = "connected"; });
  socket.addEventListener("close", () => { status.textContent = "disconnected"; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.error) {
      error.textContent = message.error;
      return;
    }
    if (list.querySelector(`li[data-id="${message.id}"]`)) return;
    const li = document.createElement("li");
    li.dataset.id = message.id;
    li.textContent = message.text;
    list.append(li);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    socket.send(JSON.stringify({text: form.text.value}));
    form.text.value = "";
    error.textContent = "";
  });
})();

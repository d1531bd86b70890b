// The chat's client: send a message, and long-poll for the next ones.
"use strict";
(function () {
  const list = document.getElementById("messages");
  const form = document.getElementById("chat");
  function xsrf() {
    const m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function lastId() {
    const items = list.querySelectorAll("li[data-id]");
    return items.length ? Number(items[items.length - 1].dataset.id) : 0;
  }
  function show(message) {
    if (list.querySelector(`li[data-id="${message.id}"]`)) return;
    const li = document.createElement("li");
    li.dataset.id = message.id;
    const who = document.createElement("b");
    who.textContent = message.author;  // text, never HTML
    const text = document.createElement("span");
    text.textContent = message.text;
    li.append(who, ": ", text);
    list.append(li);
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new URLSearchParams(new FormData(form));
    const response = await fetch(form.action, {method: "POST", body: body,
                                               headers: {"X-XSRFToken": xsrf()}});
    if (response.ok) { show(await response.json()); form.text.value = ""; }
  });
  async function poll() {
    for (;;) {
      try {
        const response = await fetch(`/chat/updates?cursor=${lastId()}`);
        if (!response.ok) throw new Error(response.status);
        (await response.json()).messages.forEach(show);
      } catch (e) {
        await new Promise((resolve) => setTimeout(resolve, 2000));  // the server is away
      }
    }
  }
  poll();
})();

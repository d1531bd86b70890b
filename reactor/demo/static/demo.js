// The demo's client: the upload (streamed as the request body) and the chat
// (send, and long-poll for the next messages). Text is shown as text, never HTML.
"use strict";
(function () {
  function xsrf() {
    const m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  const uploadForm = document.getElementById("upload-form");
  const result = document.getElementById("upload-result");
  uploadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("upload-file").files[0];
    if (!file) return;
    if (file.size > Number(uploadForm.dataset.max)) {
      result.textContent = `${file.name} is too big (${file.size} bytes)`;
      return;
    }
    const url = `${uploadForm.action}?name=${encodeURIComponent(file.name)}`;
    const response = await fetch(url, {method: "PUT", body: file, headers: {"X-XSRFToken": xsrf()}});
    if (response.ok) {
      const upload = await response.json();
      result.textContent = `Uploaded ${upload.name}: ${upload.size} bytes`;
    } else {
      result.textContent = `Upload failed: ${response.status}`;
    }
  });

  const list = document.getElementById("messages");
  const chatForm = document.getElementById("chat-form");
  function lastId() {
    const items = list.querySelectorAll("li[data-id]");
    return items.length ? Number(items[items.length - 1].dataset.id) : 0;
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
  chatForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new URLSearchParams(new FormData(chatForm));
    const response = await fetch(chatForm.action, {method: "POST", body: body,
                                                   headers: {"X-XSRFToken": xsrf()}});
    if (response.ok) {
      show(await response.json());
      chatForm.text.value = "";
    }
  });
  async function poll() {
    for (;;) {
      try {
        const response = await fetch(`/chat/updates?cursor=${lastId()}`);
        if (!response.ok) throw new Error(String(response.status));
        (await response.json()).messages.forEach(show);
      } catch (e) {
        await new Promise((resolve) => setTimeout(resolve, 2000));  // the server is away
      }
    }
  }
  poll();
})();

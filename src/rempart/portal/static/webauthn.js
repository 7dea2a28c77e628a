// Security keys (WebAuthn): registering one, signing in with one. The server gives the options
// and checks the answers; this script only carries them between it and the browser's API.
// Forms marked data-webauthn="register" or "login" work without it for nothing else: their
// button stays hidden when the browser cannot do WebAuthn.
"use strict";

(function () {
  const supported = window.PublicKeyCredential
    && PublicKeyCredential.parseCreationOptionsFromJSON
    && PublicKeyCredential.parseRequestOptionsFromJSON;

  async function post(url, token, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
      body: JSON.stringify(body || {}),
    });
    let answer = {};
    try { answer = await response.json(); } catch (e) { /* an error page */ }
    if (!response.ok) {
      const error = new Error(answer.message || "La demande a échoué : rechargez la page.");
      error.location = answer.location;
      throw error;
    }
    return answer;
  }

  function say(form, text) {
    const box = form.querySelector("[data-webauthn-message]");
    box.textContent = text;
    box.hidden = false;
    box.focus();
  }

  async function register(form, token) {
    const name = form.querySelector("input[name=name]").value.trim();
    if (!name) { say(form, "Donnez un nom à cette clé, pour la reconnaître."); return; }
    const options = await post("/compte/cles/options", token);
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    const credential = await navigator.credentials.create({publicKey});
    const done = await post("/compte/cles", token, {name, credential: credential.toJSON()});
    window.location.assign(done.location);
  }

  async function login(form, token) {
    const options = await post("/login/cle/options", token);
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    const credential = await navigator.credentials.get({publicKey});
    const done = await post("/login/cle", token, {credential: credential.toJSON()});
    window.location.assign(done.location);
  }

  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    if (!supported) return;
    form.hidden = false;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const token = form.querySelector("input[name=csrf]").value;
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        await (form.dataset.webauthn === "register" ? register : login)(form, token);
      } catch (error) {
        // NotAllowedError: the person cancelled, or the time ran out.
        say(form, error.name === "NotAllowedError"
          ? "Opération annulée ou délai dépassé : réessayez."
          : error.message);
        if (error.location) window.setTimeout(function () { window.location.assign(error.location); }, 3000);
      } finally {
        button.disabled = false;
      }
    });
  });
})();

// Security keys (WebAuthn): enrolling with one, registering one, signing in and confirming a
// session with one. The server gives the options and checks the answers; this script only
// carries them between it and the browser's API. Its forms (data-webauthn="...") and sections
// (data-webauthn-only) stay hidden when the browser cannot do WebAuthn: the code works as before.
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

  async function create(options) {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    return (await navigator.credentials.create({publicKey})).toJSON();
  }

  async function get(options) {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    return (await navigator.credentials.get({publicKey})).toJSON();
  }

  function field(form, name) {
    return form.querySelector("input[name=" + name + "]").value.trim();
  }

  // Each flow resolves to the address to go to once the server has accepted the key.
  const flows = {
    async register(form, token) {
      const name = field(form, "name");
      if (!name) throw new Error("Donnez un nom à cette clé, pour la reconnaître.");
      const credential = await create(await post("/compte/cles/options", token));
      return (await post("/compte/cles", token, {name, credential})).location;
    },
    async login(form, token) {
      const credential = await get(await post("/login/cle/options", token));
      return (await post("/login/cle", token, {credential})).location;
    },
    async "step-up"(form, token) {
      const credential = await get(await post("/compte/confirmer/cle/options", token));
      const back = form.dataset.back || "";
      return (await post("/compte/confirmer/cle", token, {credential, back})).location;
    },
    async enrol(form, token) {
      // The password is the one typed in step 1 of the page's other form.
      const password = document.getElementById("password").value;
      const password2 = document.getElementById("password2").value;
      const code = field(form, "code");
      const name = field(form, "name");
      if (!password) throw new Error("Choisissez d'abord votre mot de passe (étape 1).");
      if (!name) throw new Error("Donnez un nom à cette clé, pour la reconnaître.");
      const started = await post("/enrol/cle/options", token, {code});
      const credential = await create(started.options);
      const body = {code, password, password2, name, ticket: started.ticket, credential};
      return (await post("/enrol/cle", token, body)).location;
    },
  };

  function say(form, text) {
    const box = form.querySelector("[data-webauthn-message]");
    box.textContent = text;
    box.hidden = false;
    box.focus();
  }

  if (!supported) return;
  document.querySelectorAll("[data-webauthn-only]").forEach(function (part) { part.hidden = false; });
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const token = form.querySelector("input[name=csrf]").value;
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        window.location.assign(await flows[form.dataset.webauthn](form, token));
      } catch (error) {
        // NotAllowedError: the person cancelled, or the time ran out.
        say(form, error.name === "NotAllowedError"
          ? "Opération annulée ou délai dépassé : réessayez."
          : error.message);
        if (error.location) {
          window.setTimeout(function () { window.location.assign(error.location); }, 3000);
        }
      } finally {
        button.disabled = false;
      }
    });
  });
})();

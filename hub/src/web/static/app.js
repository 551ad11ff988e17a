// The parents' page: sign in and out, give or withdraw consent for a child,
// ask for an original, type the SMS code, download. Everything goes through the hub's JSON API; the page itself is
// rendered on the hub.
'use strict';

// POSTs JSON and returns the JSON answer, or throws with the hub's plain message.
async function post(path, body) {
  return send('POST', path, body);
}

// Sends JSON with a method and returns the JSON answer, or throws with the
// hub's plain message.
async function send(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  let data = {};
  try {
    data = await response.json();
  } catch (_) {
    // Not JSON: fall through to the generic message.
  }
  if (!response.ok) {
    throw new Error(data.message || 'Something went wrong; please try again.');
  }
  return data;
}

function setUpLogin(form) {
  const status = form.querySelector('.status');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.textContent = 'Signing in…';
    try {
      await post('/api/login', {
        login: form.elements.login.value,
        password: form.elements.password.value,
      });
      window.location.reload();
    } catch (error) {
      form.elements.password.value = '';
      status.textContent = error.message;
    }
  });
}

function setUpLogout(button) {
  button.addEventListener('click', async () => {
    try {
      await post('/api/logout', {});
    } finally {
      window.location.reload();
    }
  });
}

function setUpPhoto(item) {
  const ask = item.querySelector('.ask');
  const form = item.querySelector('.code');
  const status = item.querySelector('.status');
  const photoId = encodeURIComponent(item.dataset.photoId);

  ask.addEventListener('click', async () => {
    ask.disabled = true;
    status.textContent = 'Sending a code to your phone…';
    try {
      const data = await post('/api/photos/' + photoId + '/original', {});
      form.dataset.requestId = data.request_id;
      form.elements.code.value = '';
      form.hidden = false;
      form.elements.code.focus();
      status.textContent = 'Type the 6-digit code from the SMS. It works for 5 minutes.';
    } catch (error) {
      status.textContent = error.message;
    } finally {
      ask.disabled = false;
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const code = form.elements.code.value.trim();
    // All six digits, leading zeros included.
    if (!/^[0-9]{6}$/.test(code)) {
      status.textContent = 'The code has six digits; type all of them, zeros too.';
      return;
    }
    try {
      const requestId = encodeURIComponent(form.dataset.requestId);
      const data = await post('/api/original-requests/' + requestId + '/verify', { code });
      form.elements.code.value = '';
      form.hidden = true;
      status.textContent = 'Downloading the original…';
      // An attachment: the browser saves it and this page stays.
      window.location.assign(data.download);
    } catch (error) {
      status.textContent = error.message;
    }
  });
}

// Each switch gives or withdraws one consent at once; on failure it goes
// back to what the hub still holds.
function setUpChild(item) {
  const status = item.querySelector('.status');
  const childId = encodeURIComponent(item.dataset.childId);
  for (const box of item.querySelectorAll('input[type=checkbox]')) {
    box.addEventListener('change', async () => {
      box.disabled = true;
      status.textContent = 'Saving…';
      try {
        await send('PUT', '/api/children/' + childId + '/consent', {
          purpose: box.name,
          granted: box.checked,
        });
        status.textContent = box.checked ? 'Saved: yes.' : 'Saved: no.';
      } catch (error) {
        box.checked = !box.checked;
        status.textContent = error.message;
      } finally {
        box.disabled = false;
      }
    });
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const login = document.getElementById('login');
  if (login) {
    setUpLogin(login);
  }
  const logout = document.getElementById('logout');
  if (logout) {
    setUpLogout(logout);
  }
  for (const item of document.querySelectorAll('.child')) {
    setUpChild(item);
  }
  for (const item of document.querySelectorAll('.photo')) {
    setUpPhoto(item);
  }
});

// The hub's page. A parent signs in, gives or withdraws consent for a child,
// asks for an original, types the SMS code and downloads; an admin sets
// consents; a teacher reviews photos: names each face, marks one the
// detector missed, releases the photo. Everything goes through the hub's
// JSON API; the page's frame is rendered on the hub.
'use strict';

// POSTs JSON and returns the JSON answer, or throws with the hub's plain message.
async function post(path, body) {
  return send('POST', path, body);
}

async function get(path) {
  return send('GET', path);
}

// Sends a request, with a JSON body if there is one, and returns the JSON
// answer. On an error it throws with the hub's plain message as the message
// and its stable code as `code`, for the cases the page handles itself.
async function send(method, path, body) {
  const options = { method, credentials: 'same-origin' };
  if (body !== undefined) {
    options.headers = { 'Content-Type': 'application/json' };
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = {};
  try {
    data = await response.json();
  } catch (_) {
    // Not JSON: fall through to the generic message.
  }
  if (!response.ok) {
    const error = new Error(data.message || 'Something went wrong; please try again.');
    error.code = data.error;
    throw error;
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

// A photo whose original may not be given out has no "Get the original"
// button at all; only its preview is set up here then.
function setUpPhoto(item) {
  const ask = item.querySelector('.ask');
  const form = item.querySelector('.code');
  const status = item.querySelector('.status');
  const photoId = encodeURIComponent(item.dataset.photoId);
  if (!ask || !form) {
    return;
  }

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
      // A consent withdrawn since the page was shown: asking again cannot help.
      if (error.code === 'original_not_allowed') {
        ask.hidden = true;
      }
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

// An admin revokes a device after confirming; the page then shows it revoked.
function setUpRevoke(button) {
  const status = button.closest('section').querySelector('.status');
  button.addEventListener('click', async () => {
    if (!confirm('Revoke this device? It will take no more photos until it is set up again.')) {
      return;
    }
    button.disabled = true;
    try {
      await post('/api/admin/devices/' + encodeURIComponent(button.dataset.deviceId) + '/revoke', {});
      button.replaceWith('revoked');
    } catch (error) {
      status.textContent = error.message;
      button.disabled = false;
    }
  });
}

// The teacher's review page. One photo is open at a time; `view.photo` is
// the hub's last answer about it, and every change is drawn again from the
// hub's answer rather than guessed here (naming a child on one face may take
// the name off another).
function setUpReview(section) {
  const view = {
    queue: section.querySelector('.queue'),
    queueStatus: section.querySelector('.queue-status'),
    viewer: section.querySelector('.viewer'),
    title: section.querySelector('.viewer-title'),
    meta: section.querySelector('.viewer .meta'),
    stage: section.querySelector('.stage'),
    image: section.querySelector('.review-image'),
    boxes: section.querySelector('.boxes'),
    mark: section.querySelector('.mark'),
    hint: section.querySelector('.hint'),
    faces: section.querySelector('.faces'),
    noFaces: section.querySelector('.no-faces'),
    releaseNote: section.querySelector('.release-note'),
    release: section.querySelector('.release'),
    status: section.querySelector('.viewer-status'),
    photo: null,
    marking: false,
    // Changes go to the hub one after another, so answers cannot cross.
    pending: Promise.resolve(),
  };

  view.image.addEventListener('load', () => view.stage.classList.remove('loading'));
  view.image.addEventListener('error', () => {
    view.stage.classList.remove('loading');
    view.status.textContent = 'The photo could not be shown; try opening it again.';
  });
  // The photo is for looking at here, not for keeping: no "Save image as".
  view.stage.addEventListener('contextmenu', (event) => event.preventDefault());
  view.release.addEventListener('click', () => act(view, () => release(view)));
  view.noFaces.querySelector('input').addEventListener('change', () => showRelease(view));
  setUpMarking(view);
  loadQueue(view);
}

async function loadQueue(view) {
  try {
    showQueue(view, await get('/api/review'));
  } catch (error) {
    view.queueStatus.textContent = error.message;
  }
}

function showQueue(view, photos) {
  view.queue.replaceChildren();
  for (const photo of photos) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'pick';
    button.dataset.photoId = photo.id;
    button.textContent = queueLabel(photo);
    button.addEventListener('click', () => act(view, () => openPhoto(view, photo.id)));
    item.append(button);
    view.queue.append(item);
  }
  countQueue(view);
}

function countQueue(view) {
  const waiting = view.queue.children.length;
  view.queueStatus.textContent =
    waiting === 0
      ? 'No photo is waiting for review.'
      : waiting === 1
        ? '1 photo is waiting for review.'
        : waiting + ' photos are waiting for review.';
}

function queueLabel(photo) {
  return 'Taken ' + photo.local.captured_at + ' · ' + facesText(photo);
}

function facesText(photo) {
  const count = photo.faces.length;
  const unknown = photo.faces.filter((face) => face.child_id === null).length;
  if (count === 0) {
    return 'no face found';
  }
  const faces = count === 1 ? '1 face' : count + ' faces';
  return unknown === 0 ? faces + ', all named' : faces + ', ' + unknown + ' unknown';
}

function photoPath(photo) {
  return '/api/photos/' + encodeURIComponent(photo.id);
}

async function openPhoto(view, id) {
  stopMarking(view);
  view.viewer.hidden = false;
  view.status.textContent = 'Opening the photo…';
  try {
    const photo = await get('/api/review/' + encodeURIComponent(id));
    view.photo = photo;
    view.noFaces.querySelector('input').checked = false;
    showImage(view, photo);
    redraw(view);
    view.status.textContent = '';
    view.title.focus();
  } catch (error) {
    view.status.textContent = error.message;
  }
}

// The hub serves the photo at most 1280 px on its long side. Its size is set
// before it arrives, so the face boxes sit right from the start, and the
// stage is kept within the screen's height.
function showImage(view, photo) {
  const scale = Math.min(1, 1280 / Math.max(photo.width, photo.height));
  const width = Math.round(photo.width * scale);
  const height = Math.round(photo.height * scale);
  view.image.width = width;
  view.image.height = height;
  view.stage.style.maxWidth =
    'min(100%, ' + width + 'px, ' + ((80 * photo.width) / photo.height).toFixed(2) + 'vh)';
  view.image.alt = 'Photo taken ' + photo.local.captured_at + ', faces outlined';
  view.stage.classList.add('loading');
  view.image.src = '/api/review/' + encodeURIComponent(photo.id) + '/image';
}

// Draws the open photo from `view.photo`: its facts, the face boxes, a
// select per face, the release controls and its line in the queue. `focusN`
// puts the focus back on that face's select after the redraw.
function redraw(view, focusN) {
  const photo = view.photo;
  view.title.textContent = 'Photo taken ' + photo.local.captured_at;
  view.meta.textContent = metaText(photo);
  drawBoxes(view);
  drawFaces(view);
  showRelease(view);
  updateQueue(view);
  if (focusN !== undefined) {
    const select = faceSelect(view, focusN);
    if (select) {
      select.focus();
    }
  }
}

function metaText(photo) {
  const parts = ['Received ' + photo.local.received_at, facesText(photo)];
  if (photo.damaged) {
    parts.push('it arrived damaged');
  }
  parts.push(photo.released_at ? 'released ' + photo.local.released_at : 'not released yet');
  return parts.join(' · ');
}

// Boxes are in pixels of the full upright photo; as percentages of the
// stage they follow the image at any displayed size.
function place(element, box, photo) {
  const [x, y, w, h] = box;
  element.style.left = (100 * x) / photo.width + '%';
  element.style.top = (100 * y) / photo.height + '%';
  element.style.width = (100 * w) / photo.width + '%';
  element.style.height = (100 * h) / photo.height + '%';
}

function drawBoxes(view) {
  const photo = view.photo;
  view.boxes.replaceChildren();
  for (const face of photo.faces) {
    const box = document.createElement('div');
    box.className = 'box';
    box.classList.toggle('named', face.child_id !== null);
    box.classList.toggle('added', face.origin === 'teacher');
    box.dataset.n = face.n;
    const number = document.createElement('span');
    number.className = 'n';
    number.textContent = String(face.n + 1);
    box.append(number);
    place(box, face.box, photo);
    // A shortcut for the mouse; the selects below are what keyboards and
    // screen readers use.
    box.addEventListener('click', () => faceSelect(view, face.n)?.focus());
    view.boxes.append(box);
  }
}

function drawFaces(view) {
  const photo = view.photo;
  view.faces.replaceChildren();
  for (const face of photo.faces) {
    const item = document.createElement('li');
    const label = document.createElement('label');
    label.textContent =
      'Face ' + (face.n + 1) + (face.origin === 'teacher' ? ' (marked by you)' : '');
    const select = document.createElement('select');
    select.name = 'face-' + face.n;
    select.dataset.n = face.n;
    // `Option` sets its text as text: a child's name cannot become markup.
    select.append(new Option('Unknown (stays covered)', ''));
    for (const child of photo.children) {
      select.append(new Option(child.name, child.id));
    }
    select.value = face.child_id || '';
    select.addEventListener('change', () => act(view, () => nameFace(view, face.n, select)));
    select.addEventListener('focus', () => highlight(view, face.n));
    select.addEventListener('blur', () => highlight(view, null));
    label.append(select);
    item.append(label);
    view.faces.append(item);
  }
}

function faceSelect(view, n) {
  return view.faces.querySelector('select[data-n="' + n + '"]');
}

function highlight(view, n) {
  for (const box of view.boxes.querySelectorAll('.box')) {
    box.classList.toggle('active', box.dataset.n === String(n));
  }
}

// Runs one change after the ones already sent.
function act(view, change) {
  view.pending = view.pending.then(change, change);
  return view.pending;
}

async function nameFace(view, n, select) {
  const photo = view.photo;
  const childId = select.value || null;
  const before = photo.faces.find((face) => face.n !== n && childId && face.child_id === childId);
  view.status.textContent = 'Saving…';
  try {
    view.photo = await post(photoPath(photo) + '/faces/' + n + '/name', { child_id: childId });
    redraw(view, n);
    view.status.textContent = namedText(view.photo, n, childId, before);
  } catch (error) {
    // Back to what the hub still holds.
    redraw(view, n);
    view.status.textContent = error.message;
  }
}

function namedText(photo, n, childId, before) {
  if (childId === null) {
    return 'Face ' + (n + 1) + ' is unknown: it stays covered for every family.';
  }
  const child = photo.children.find((child) => child.id === childId);
  const name = child ? child.name : 'the child';
  const moved = before ? ' (no longer on face ' + (before.n + 1) + ')' : '';
  return 'Face ' + (n + 1) + ' is ' + name + moved + '.';
}

function showRelease(view) {
  const photo = view.photo;
  const unknown = photo.faces.filter((face) => face.child_id === null).length;
  view.release.hidden = photo.released_at !== null;
  view.noFaces.hidden = photo.released_at !== null || photo.faces.length > 0;
  if (photo.released_at !== null) {
    view.releaseNote.textContent =
      'Families can see this photo. A name you change now changes what they see at once.';
  } else if (photo.faces.length === 0) {
    view.releaseNote.textContent =
      'No face was found. Look again: mark any face the detector missed, or confirm there is none.';
  } else if (unknown > 0) {
    view.releaseNote.textContent =
      (unknown === 1 ? '1 face is' : unknown + ' faces are') +
      ' still unknown: released as it is, they stay covered for every family.';
  } else {
    view.releaseNote.textContent = 'Every face is named.';
  }
}

async function release(view) {
  const photo = view.photo;
  const confirmed = view.noFaces.querySelector('input');
  let body = {};
  if (photo.faces.length === 0) {
    // The hub needs a person's word that nobody is in the photo; only a
    // ticked box here sends it.
    if (!confirmed.checked) {
      view.noFaces.hidden = false;
      view.status.textContent =
        'Tick "There are no faces in this photo" first, or mark the faces you see.';
      confirmed.focus();
      return;
    }
    body = { no_faces: true };
  }
  view.status.textContent = 'Releasing…';
  try {
    view.photo = await post(photoPath(photo) + '/release', body);
    stopMarking(view);
    redraw(view);
    view.status.textContent = 'Released. Choose the next photo from the list.';
  } catch (error) {
    if (error.code === 'no_faces_unconfirmed') {
      view.noFaces.hidden = false;
      confirmed.focus();
    }
    view.status.textContent = error.message;
  }
}

// The open photo's line in the queue: marked as current, its count brought
// up to date, gone once released.
function updateQueue(view) {
  const photo = view.photo;
  for (const button of view.queue.querySelectorAll('.pick')) {
    if (button.dataset.photoId !== photo.id) {
      button.removeAttribute('aria-current');
    } else if (photo.released_at !== null) {
      button.parentElement.remove();
    } else {
      button.setAttribute('aria-current', 'true');
      button.textContent = queueLabel(photo);
    }
  }
  countQueue(view);
}

// Marking a missed face: a pointer drag over the image (mouse, pen or
// finger) while "Mark a missed face" is pressed. The page does not scroll
// under a finger then (see `.stage.marking` in app.css).
function setUpMarking(view) {
  let start = null;
  let ghost = null;
  const cancel = () => {
    start = null;
    if (ghost) {
      ghost.remove();
      ghost = null;
    }
  };

  view.mark.addEventListener('click', () => {
    if (view.marking) {
      stopMarking(view);
    } else {
      startMarking(view);
    }
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && view.marking) {
      cancel();
      stopMarking(view);
      view.status.textContent = 'Stopped marking.';
    }
  });

  view.stage.addEventListener('pointerdown', (event) => {
    if (!view.marking || !event.isPrimary || !view.photo) {
      return;
    }
    event.preventDefault();
    view.stage.setPointerCapture(event.pointerId);
    start = fraction(view.stage, event);
    ghost = document.createElement('div');
    ghost.className = 'box ghost';
    view.boxes.append(ghost);
    placeDrag(ghost, start, start);
  });
  view.stage.addEventListener('pointermove', (event) => {
    if (start) {
      placeDrag(ghost, start, fraction(view.stage, event));
    }
  });
  view.stage.addEventListener('pointerup', (event) => {
    if (!start) {
      return;
    }
    const box = toPixels(view.photo, start, fraction(view.stage, event));
    cancel();
    act(view, () => addFace(view, box));
  });
  view.stage.addEventListener('pointercancel', cancel);
}

function startMarking(view) {
  view.marking = true;
  view.stage.classList.add('marking');
  view.mark.setAttribute('aria-pressed', 'true');
  view.hint.hidden = false;
}

function stopMarking(view) {
  view.marking = false;
  view.stage.classList.remove('marking');
  view.mark.setAttribute('aria-pressed', 'false');
  view.hint.hidden = true;
}

// Where a pointer is on the stage, as fractions of its size, kept inside it.
function fraction(stage, event) {
  const rect = stage.getBoundingClientRect();
  const clamp = (value) => Math.min(1, Math.max(0, value));
  return {
    x: clamp((event.clientX - rect.left) / rect.width),
    y: clamp((event.clientY - rect.top) / rect.height),
  };
}

function placeDrag(element, from, to) {
  element.style.left = 100 * Math.min(from.x, to.x) + '%';
  element.style.top = 100 * Math.min(from.y, to.y) + '%';
  element.style.width = 100 * Math.abs(to.x - from.x) + '%';
  element.style.height = 100 * Math.abs(to.y - from.y) + '%';
}

// A drag as [x, y, w, h] in whole pixels of the full photo, inside it.
function toPixels(photo, from, to) {
  const left = Math.round(Math.min(from.x, to.x) * photo.width);
  const top = Math.round(Math.min(from.y, to.y) * photo.height);
  const right = Math.round(Math.max(from.x, to.x) * photo.width);
  const bottom = Math.round(Math.max(from.y, to.y) * photo.height);
  return [left, top, right - left, bottom - top];
}

async function addFace(view, box) {
  const photo = view.photo;
  // The hub takes no face smaller than 8 x 8 pixels; a tap is no face at all.
  if (box[2] < 8 || box[3] < 8) {
    view.status.textContent = 'That box is too small: drag across the whole face.';
    return;
  }
  view.status.textContent = 'Adding the face…';
  try {
    const answer = await post(photoPath(photo) + '/faces', { box });
    view.photo = answer.photo;
    stopMarking(view);
    redraw(view, answer.n);
    view.status.textContent = 'Face ' + (answer.n + 1) + ' added: choose who it is.';
  } catch (error) {
    view.status.textContent = error.message;
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
  for (const button of document.querySelectorAll('button.revoke')) {
    setUpRevoke(button);
  }
  const review = document.getElementById('review');
  if (review) {
    setUpReview(review);
  }
});

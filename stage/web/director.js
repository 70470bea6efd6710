// livesinger director's console: one WebSocket to the engine (/director/ws) carrying the
// same cue vocabulary as OSC and MQTT ({command, args, singer}); the engine pushes the
// show's state to every console. Nothing here keeps show state of its own.

const $ = (id) => document.getElementById(id);
const NOTE_NAMES = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'];
const KEY_LOW = 60;   // C4
const KEY_HIGH = 84;  // C6

// What a test (or a curious director) may read.
const console_ = window.director = {
  link: 'connecting', hello: null, state: null, replies: [], errors: [], sent: 0,
};

let ws = null;
let nextId = 1;
const pending = new Map();

// ---- connection ----------------------------------------------------------------------

async function start() {
  const res = await fetch('/director/session', { credentials: 'same-origin' });
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => ({}));
    showLogin(res.status === 403 ? body.error : '');
    return;
  }
  connect();
}

function showLogin(message) {
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').focus();
  setLink('signed out', 'off');
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const res = await fetch('/director/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: $('token').value }),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({ error: `refused (${res.status})` }));
    $('login-error').textContent = body.error;
    console_.errors.push(body.error);
    return;
  }
  $('token').value = '';
  $('login').hidden = true;
  connect();
});

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  ws = new WebSocket(`${scheme}://${location.host}/director/ws`);
  setLink('connecting', 'off');
  ws.onopen = () => setLink('connected', 'on');
  ws.onmessage = (ev) => receive(JSON.parse(ev.data));
  ws.onclose = () => {
    setLink('disconnected: retrying', 'off');
    for (const [, p] of pending) p.reject(new Error('disconnected'));
    pending.clear();
    setTimeout(start, 1000);
  };
}

function setLink(text, cls) {
  console_.link = text;
  $('link').textContent = text;
  $('link').className = `link ${cls}`;
}

// Send a cue; resolves with its reply data, rejects with the engine's error line.
function send(command, args = {}, singer = null) {
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    toast('not connected to the engine');
    return Promise.reject(new Error('not connected'));
  }
  const id = nextId++;
  ws.send(JSON.stringify({ id, command, args, singer }));
  console_.sent += 1;
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }))
    .catch((err) => { toast(err.message); throw err; });
}
window.director.send = send;

function receive(msg) {
  if (msg.type === 'hello') {
    console_.hello = msg;
    fillCatalog(msg);
  } else if (msg.type === 'state') {
    console_.state = msg;
    render(msg);
  } else if (msg.type === 'reply' || msg.type === 'error') {
    if (msg.type === 'error') console_.errors.push(msg.error);
    else console_.replies.push(msg.data);
    const p = pending.get(msg.id);
    if (p) {
      pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new Error(msg.error)); else p.resolve(msg.data);
    } else if (msg.type === 'error') {
      toast(msg.error);
    }
  }
}

let toastTimer = null;
function toast(text) {
  $('toast').textContent = text;
  $('toast').hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $('toast').hidden = true; }, 5000);
}

const quiet = (promise) => promise.catch(() => {});

// ---- transport -----------------------------------------------------------------------

function cueIds() { return (console_.state?.cues.entries || []).map((e) => e.id); }

function standBy(offset) {
  const ids = cueIds();
  if (!ids.length) return;
  const standby = console_.state.cues.standby;
  const at = standby === null ? ids.length : ids.indexOf(standby);
  const to = Math.min(ids.length - 1, Math.max(0, at + offset));
  quiet(send('playhead', { id: ids[to] }));
}

$('go').addEventListener('click', () => quiet(send('go')));
$('prev').addEventListener('click', () => standBy(-1));
$('next').addEventListener('click', () => standBy(1));
$('stop').addEventListener('click', () => quiet(send('song.stop')));
$('panic').addEventListener('click', () => quiet(send('panic')));

document.addEventListener('keydown', (ev) => {
  const tag = ev.target.tagName;
  if (['INPUT', 'TEXTAREA', 'SELECT'].includes(tag) || ev.target.closest?.('.keyboard')) return;
  if (ev.code === 'Space' && !ev.repeat) {
    ev.preventDefault();
    quiet(send('go'));
  } else if (ev.code === 'Escape') {
    quiet(send('panic'));
  } else if (ev.code === 'ArrowUp') {
    ev.preventDefault(); standBy(-1);
  } else if (ev.code === 'ArrowDown') {
    ev.preventDefault(); standBy(1);
  }
});

// ---- cue file ------------------------------------------------------------------------

$('cue-file').addEventListener('change', async () => {
  const file = $('cue-file').files[0];
  if (!file) return;
  const text = await file.text();
  $('cue-text').value = text;
  quiet(send('cues.load', { text }));
});
$('cue-edit').addEventListener('click', async () => {
  const res = await fetch('/director/cues.yaml', { credentials: 'same-origin' });
  $('cue-text').value = await res.text();
});
$('cue-apply').addEventListener('click', () => quiet(send('cues.load', { text: $('cue-text').value })));

// ---- song ----------------------------------------------------------------------------

function beatOfBar(bar, meters) {
  // meters: [[beat, beats per bar], ...] from the score's time signatures
  let beat = 0; let at = 1;
  for (let i = 0; i < meters.length; i += 1) {
    const [start, perBar] = meters[i];
    const end = i + 1 < meters.length ? meters[i + 1][0] : Infinity;
    const bars = (end - start) / perBar;
    if (bar - at < bars) return start + (bar - at) * perBar;
    at += bars; beat = end;
  }
  return beat;
}

$('song-load').addEventListener('click', () => quiet(send('song.load', { song: $('song-pick').value })));
$('song-play').addEventListener('click', () => quiet(send('song.play')));
$('song-pause').addEventListener('click', () => quiet(send('song.stop')));
$('song-rewind').addEventListener('click', async () => {
  await quiet(send('song.stop'));
  quiet(send('song.seek', { beat: 0 }));
});
$('seek').addEventListener('click', () => {
  const meters = console_.state?.song.meters || [[0, 4]];
  const beat = beatOfBar(Math.max(1, Number($('seek-bar').value) || 1), meters);
  quiet(send('song.seek', { beat }));
});
$('tempo').addEventListener('change', () => {
  const song = console_.state?.song;
  if (!song || !song.score_bpm) { toast('no song loaded'); return; }
  const bpm = Math.round(song.score_bpm * Number($('tempo').value)) / 100;
  quiet(send('tempo', { bpm }));
});

// ---- singers -------------------------------------------------------------------------

const muted = new Set();

function noteName(midi) {
  const m = Math.round(midi);
  return `${NOTE_NAMES[m % 12]}${Math.floor(m / 12) - 1}`;
}

function fillCatalog(hello) {
  const pick = $('song-pick');
  pick.replaceChildren(...(hello.songs || []).map((s) => new Option(s, s)));
  const exprs = $('expr');
  exprs.replaceChildren();
  for (const [name, [lo, hi, meaning]] of Object.entries(hello.expressions || {})) {
    const label = document.createElement('label');
    label.title = meaning;
    const input = Object.assign(document.createElement('input'), {
      type: 'range', min: lo, max: hi, step: (hi - lo) / 100,
      value: name === 'tension' ? 0.5 : 1,
    });
    input.setAttribute('aria-label', name.replace('_', ' '));
    const out = document.createElement('output');
    out.textContent = Number(input.value).toFixed(2);
    input.addEventListener('input', () => { out.textContent = Number(input.value).toFixed(2); });
    input.addEventListener('change', () => {
      const singer = $('expr-singer').value || null;
      quiet(send('expr', { name, value: Number(input.value) }, singer));
    });
    label.append(name.replace('_', ' '), input, out);
    exprs.append(label);
  }
}

function renderSingers(show) {
  const voices = console_.hello?.voices || [];
  const body = $('singer-table').tBodies[0];
  const names = Object.keys(show.singers || {});
  if (body.dataset.names !== names.join(',')) {
    body.dataset.names = names.join(',');
    body.replaceChildren(...names.map((name) => {
      const row = body.insertRow();
      row.dataset.singer = name;
      row.insertCell().textContent = name;
      const voice = document.createElement('select');
      voice.setAttribute('aria-label', `Voice of ${name}`);
      voice.append(...voices.map((v) => new Option(v, v)));
      voice.addEventListener('change', () => quiet(send('voice', { name: voice.value }, name)));
      row.insertCell().append(voice);
      row.insertCell().className = 'note';
      row.insertCell().className = 'syllable';
      const mute = Object.assign(document.createElement('button'), { textContent: 'M' });
      mute.className = 'mute';
      mute.setAttribute('aria-label', `Mute ${name}`);
      mute.setAttribute('aria-pressed', 'false');
      mute.addEventListener('click', () => {
        const on = !muted.has(name);
        quiet(send('expr', { name: 'volume', value: on ? 0 : 1 }, name).then(() => {
          if (on) muted.add(name); else muted.delete(name);
          mute.setAttribute('aria-pressed', String(on));
        }));
      });
      row.insertCell().append(mute);
      return row;
    }));
    const pick = $('expr-singer');
    pick.replaceChildren(new Option('all singers', ''), ...names.map((n) => new Option(n, n)));
  }
  for (const row of body.rows) {
    const name = row.dataset.singer;
    const select = row.cells[1].firstChild;
    if (document.activeElement !== select) select.value = show.singers[name];
    const singing = (show.singing || []).find((s) => s.singer === name);
    row.cells[2].textContent = singing ? noteName(singing.pitch) : '–';
    row.cells[3].textContent = singing ? singing.lyric : '–';
    row.classList.toggle('singing', Boolean(singing));
  }
}

function setMeter(id, db) {
  const meter = $(id);
  const shown = Math.max(-60, Math.min(0, db));
  meter.firstElementChild.style.width = `${((shown + 60) / 60) * 100}%`;
  meter.setAttribute('aria-valuenow', shown.toFixed(1));
  meter.classList.toggle('hot', db > -3);
  $(`${id}-db`).textContent = db <= -120 ? '-∞' : `${db.toFixed(1)} dBFS`;
}

// ---- live play -----------------------------------------------------------------------

const held = new Set();

function noteOn(pitch, velocity = 0.8) {
  if (held.has(pitch)) return;
  held.add(pitch);
  document.querySelector(`[data-pitch="${pitch}"]`)?.classList.add('down');
  quiet(send('note.on', { pitch, velocity }));
}

function noteOff(pitch) {
  if (!held.has(pitch)) return;
  held.delete(pitch);
  document.querySelector(`[data-pitch="${pitch}"]`)?.classList.remove('down');
  quiet(send('note.off', { pitch }));
}

function buildKeyboard() {
  const board = $('keyboard');
  for (let pitch = KEY_LOW; pitch <= KEY_HIGH; pitch += 1) {
    const name = noteName(pitch);
    const key = document.createElement('button');
    key.className = name.includes('#') ? 'key black' : 'key white';
    key.dataset.pitch = pitch;
    key.setAttribute('aria-label', name);
    key.textContent = name.startsWith('C') && !name.includes('#') ? name : '';
    key.addEventListener('pointerdown', (ev) => { ev.preventDefault(); noteOn(pitch); });
    key.addEventListener('pointerup', () => noteOff(pitch));
    key.addEventListener('pointerleave', () => noteOff(pitch));
    key.addEventListener('keydown', (ev) => {
      if ((ev.key === 'Enter' || ev.key === ' ') && !ev.repeat) { ev.preventDefault(); noteOn(pitch); }
    });
    key.addEventListener('keyup', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') noteOff(pitch);
    });
    board.append(key);
  }
}

$('lyric-send').addEventListener('click', () => {
  const text = $('lyric').value.trim();
  if (text) quiet(send('lyric', { text }).then(() => { $('lyric').value = ''; }));
});
$('lyric').addEventListener('keydown', (ev) => { if (ev.key === 'Enter') $('lyric-send').click(); });

async function webMidi() {
  if (!navigator.requestMIDIAccess) { $('midi').textContent = 'MIDI: not in this browser'; return; }
  try {
    const access = await navigator.requestMIDIAccess();
    const hook = () => {
      const inputs = [...access.inputs.values()];
      $('midi').textContent = `MIDI: ${inputs.map((i) => i.name).join(', ') || 'no keyboard'}`;
      for (const input of inputs) {
        input.onmidimessage = ({ data: [status, pitch, velocity] }) => {
          const kind = status & 0xf0;
          if (kind === 0x90 && velocity > 0) noteOn(pitch, velocity / 127);
          else if (kind === 0x80 || (kind === 0x90 && velocity === 0)) noteOff(pitch);
        };
      }
    };
    access.onstatechange = hook;
    hook();
  } catch (err) {
    $('midi').textContent = `MIDI: ${err.message}`;
  }
}

// ---- health --------------------------------------------------------------------------

const history = [];  // [xruns, late edits] per second

function tile(label, value, bad = false) {
  const div = document.createElement('div');
  div.className = `tile${bad ? ' bad' : ''}`;
  const b = document.createElement('b');
  b.textContent = value;
  const span = document.createElement('span');
  span.textContent = label;
  div.append(b, span);
  return div;
}

function renderHealth(state) {
  const h = state.health || {};
  const show = state.show;
  const tiles = [
    tile('xruns', show.xruns, show.xruns > 0),
    tile('late edits', show.late_edits),
    tile('cue latency', show.cue_latency_ms === null ? '–' : `${show.cue_latency_ms.toFixed(1)} ms`),
    tile('lookahead', `${show.lookahead_ms} ms`),
    tile('engine CPU', h.cpu_percent === undefined ? '–' : `${h.cpu_percent}%`),
    tile('viewers', (h.viewers || []).length),
    tile('WHEP', (h.whep || []).length),
    tile('consoles', h.consoles ?? '–'),
  ];
  if (h.mocap) tiles.push(tile(`mocap ${h.mocap.source ?? ''}`, h.mocap.fps !== undefined ? `${h.mocap.fps} fps` : `${h.mocap.frames} frames`));
  if (h.performer !== undefined) tiles.push(tile('performer', h.performer ? h.performer.state ?? 'on' : 'off'));
  if (h.osc) tiles.push(tile('OSC ok / bad', `${h.osc.messages_ok} / ${h.osc.bad_packets + h.osc.errors}`, h.osc.bad_packets > 0));
  if (h.mqtt) tiles.push(tile('MQTT ok', h.mqtt.messages_ok ?? '–'));
  $('tiles').replaceChildren(...tiles);

  const viewers = [...(h.viewers || []), ...(h.whep || [])];
  $('viewers').replaceChildren(...viewers.map((v) => {
    const li = document.createElement('li');
    li.textContent = `${v.kind} ${v.id}: ${v.state}, ${v.audio_frames} frames sent, ${v.audio_dropped} dropped, ${v.age_s} s`;
    return li;
  }));

  const second = Math.floor(state.time_ms / 1000);
  if (!history.length || history[history.length - 1].s !== second) {
    history.push({ s: second, xruns: show.xruns, late: show.late_edits });
    if (history.length > 120) history.shift();
    drawSpark();
  }

  const log = $('events');
  const events = state.events || [];
  const key = events.length ? `${events.length}:${events[events.length - 1].t}:${events[events.length - 1].text}` : '';
  if (log.dataset.key !== key) {
    log.dataset.key = key;
    log.replaceChildren(...events.slice().reverse().map((e) => {
      const li = document.createElement('li');
      li.className = e.level;
      const time = document.createElement('time');
      time.textContent = e.t;
      li.append(time, ` ${e.text}`);
      return li;
    }));
  }
}

function drawSpark() {
  const canvas = $('spark');
  if (canvas.clientWidth && canvas.width !== canvas.clientWidth) canvas.width = canvas.clientWidth;
  const ctx = canvas.getContext('2d');
  const w = canvas.width; const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#2a3350';
  ctx.beginPath(); ctx.moveTo(0, h - 0.5); ctx.lineTo(w, h - 0.5); ctx.stroke();
  const step = w / 120;
  const series = [['xruns', '#ff6b6b'], ['late', '#ffc857']];
  for (const [key, color] of series) {
    const deltas = history.map((p, i) => (i ? p[key] - history[i - 1][key] : 0));
    const top = Math.max(1, ...deltas);
    ctx.fillStyle = color;
    deltas.forEach((d, i) => {
      if (!d) return;
      const bar = (d / top) * (h - 4);
      ctx.fillRect(i * step + (key === 'late' ? step / 2 : 0), h - bar, step / 2, bar);
    });
  }
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#ff6b6b';
  ctx.fillText('xruns', 6, 12);
  ctx.fillStyle = '#ffc857';
  ctx.fillText('late edits', 44, 12);
  ctx.fillStyle = '#7d88a8';
  ctx.fillText('per second, last 2 min', 104, 12);
}

// ---- state → page --------------------------------------------------------------------

function renderCues(cues) {
  const list = $('cue-list');
  const key = JSON.stringify(cues.entries);
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...cues.entries.map((entry) => {
      const li = document.createElement('li');
      li.dataset.id = entry.id;
      li.tabIndex = 0;
      li.setAttribute('aria-label', `${entry.id} ${entry.name}`.trim());
      li.title = 'Click to stand by this cue';
      const num = document.createElement('span');
      num.className = 'num';
      num.textContent = entry.id;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = entry.name || '(unnamed)';
      const what = document.createElement('span');
      what.className = 'what';
      what.textContent = entry.do.join(' · ');
      li.append(num, name, what);
      const jump = () => quiet(send('playhead', { id: entry.id }));
      li.addEventListener('click', jump);
      li.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') jump(); });
      return li;
    }));
  }
  for (const li of list.children) {
    const standby = li.dataset.id === cues.standby;
    li.classList.toggle('standby', standby);
    li.classList.toggle('fired', li.dataset.id === cues.last);
    if (standby) li.setAttribute('aria-current', 'step'); else li.removeAttribute('aria-current');
  }
  const entry = cues.entries.find((e) => e.id === cues.standby);
  $('standby').textContent = entry ? `${entry.id} ${entry.name}` : (cues.entries.length ? 'end of list' : 'no cue list');
  const last = cues.entries.find((e) => e.id === cues.last);
  $('now-cue').textContent = last ? `${last.id} ${last.name}` : '–';
}

function render(state) {
  const { show, song } = state;
  renderCues(state.cues);
  $('now-song').textContent = show.song ? `${show.song}${show.playing ? '' : ' (stopped)'}` : '–';
  $('now-beat').textContent = show.beat === null ? '–' : show.beat.toFixed(1);
  const s = show.show_s;
  $('now-clock').textContent = `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`;
  document.body.classList.toggle('playing', Boolean(show.playing));

  if (song && song.title) {
    const bpm = song.bpm || song.score_bpm;
    $('tempo-out').textContent = `${Math.round((bpm / song.score_bpm) * 100)}% · ${bpm.toFixed(1)} bpm`;
    const lyrics = $('lyrics');
    lyrics.replaceChildren(...song.line.map((syl, i) => {
      const span = document.createElement('span');
      span.textContent = syl;
      if (i === song.sung) span.className = 'sung';
      return span;
    }));
  } else {
    $('tempo-out').textContent = '100% · – bpm';
    $('lyrics').textContent = '–';
  }
  renderSingers(show);
  if (state.meters) {
    setMeter('meter-peak', state.meters.peak_dbfs);
    setMeter('meter-rms', state.meters.rms_dbfs);
  }
  renderHealth(state);
}

buildKeyboard();
webMidi();
start();

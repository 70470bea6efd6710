// The performer's page: the camera goes to the engine over WebRTC, where it is tracked like
// any other capture source (docs/mocap.md), and the microphone beside it, which follow mode
// listens to (docs/follow.md; the engine receives it only with --performer-audio page).
// Plain JS, no build step. ?audio=0 sends the camera alone.
//
// Opened as /perform?token=<control token>, the engine answered with a session cookie that
// allows the calls below. ?auto=0 waits for the Start button; ?width=&height=&fps= ask the
// camera for that size (default 640x480 at 30 fps).
const params = new URLSearchParams(location.search);
const want = { width: Number(params.get('width') || 640), height: Number(params.get('height') || 480),
  fps: Number(params.get('fps') || 30) };

// What the page is doing, for people (the status box) and tests (window.livesingerPerform).
const live = { state: 'starting', id: null, error: null, framesSent: 0, width: 0, height: 0,
  fps: 0, audio: false, audioBytesSent: 0 };
const wantAudio = params.get('audio') !== '0';
window.livesingerPerform = live;

const $ = (id) => document.getElementById(id);
function show(state, level) {
  live.state = state;
  $('state').textContent = state;
  $('state').dataset.level = level;
}
function fail(message) {
  live.error = message;
  $('error').textContent = message;
  $('error').hidden = false;
  show('stopped', 'bad');
  $('start').hidden = false;
  $('leave').hidden = true;
}

let pc = null;
let stream = null;
let statsTimer = null;

function headers() {
  return { 'Content-Type': 'application/json' };
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('this browser gives no camera here: open the page over https:// or on '
      + 'localhost (browsers only allow cameras in secure contexts)');
  }
  const video = { width: { ideal: want.width }, height: { ideal: want.height },
    frameRate: { ideal: want.fps } };
  // A singer's voice as it is: no echo cancelling, noise suppression or gain riding.
  const audio = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  if (wantAudio) {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (err) {  // no microphone (or refused): the camera alone
      console.warn(`no microphone (${err.name}): sending the camera alone`);
    }
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: false, video });
  } catch (err) {
    throw new Error(`cannot open the camera (${err.name}): ${err.message}`);
  }
}

async function start() {
  $('start').hidden = true;
  $('error').hidden = true;
  live.error = null;
  try {
    show('opening the camera', 'wait');
    stream = stream || await openCamera();
    $('self').srcObject = stream;
    const settings = stream.getVideoTracks()[0].getSettings();
    $('camera').textContent = `${settings.width}x${settings.height} @ ${settings.frameRate} fps`;

    show('connecting', 'wait');
    pc = new RTCPeerConnection();
    for (const track of stream.getVideoTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
    for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
    live.audio = stream.getAudioTracks().length > 0;
    pc.addEventListener('connectionstatechange', onState);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {  // the engine takes no trickled candidates
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      });
    });
    const res = await fetch('/perform/offer', { method: 'POST', headers: headers(),
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer' }) });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) throw new Error(`the engine refused (${res.status}): ${body.error}`);
    live.id = body.id;
    await pc.setRemoteDescription({ type: 'answer', sdp: body.sdp });
    $('leave').hidden = false;
    statsTimer = setInterval(updateStats, 1000);
  } catch (err) {
    closePeer();
    fail(err.message);
  }
}

function onState() {
  const s = pc ? pc.connectionState : 'closed';
  if (s === 'connected') show('performing: the engine receives your camera', 'ok');
  else if (s === 'failed' || s === 'closed') { closePeer(); fail(`connection ${s}`); }
  else show(s, s === 'disconnected' ? 'bad' : 'wait');
}

async function updateStats() {
  if (!pc) return;
  const report = await pc.getStats();
  report.forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'audio') live.audioBytesSent = r.bytesSent || 0;
    if (r.type === 'outbound-rtp' && r.kind === 'video') {
      live.framesSent = r.framesSent || 0;
      live.width = r.frameWidth || 0;
      live.height = r.frameHeight || 0;
      live.fps = r.framesPerSecond || 0;
      $('sent').textContent = `${live.framesSent} frames, ${live.width}x${live.height} `
        + `@ ${live.fps} fps`;
    }
  });
}

function closePeer() {
  if (statsTimer) clearInterval(statsTimer);
  statsTimer = null;
  if (pc) {
    pc.removeEventListener('connectionstatechange', onState);
    pc.close();
  }
  pc = null;
}

// Leaving tells the engine at once (it would also notice the closed connection).
function leave() {
  if (live.id) {
    fetch(`/perform/${encodeURIComponent(live.id)}`, { method: 'DELETE', headers: headers(),
      keepalive: true }).catch(() => {});
  }
  live.id = null;
  closePeer();
  show('left', 'wait');
  $('leave').hidden = true;
  $('start').hidden = false;
}
window.livesingerLeave = leave;

$('start').addEventListener('click', start);
$('leave').addEventListener('click', leave);
window.addEventListener('pagehide', () => { if (live.id) leave(); });
if (params.get('auto') !== '0') start();
else show('press Start', 'wait');

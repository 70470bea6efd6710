// livesinger stage renderer: receives the idol's voice and pose over WebRTC and draws the
// VRM avatar, applying each pose at the moment its audio plays (not when it arrives).
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { VRMLoaderPlugin, VRMUtils } from '@pixiv/three-vrm';

// Opened as /?token=..., the engine answered with a session cookie (HttpOnly, SameSite=Strict)
// that allows this page's files, the avatar and the offer below: nothing here handles tokens.
const params = new URLSearchParams(location.search);
const SAMPLE_RATE = 48000;

// Everything a director (or a test) may want to read lives here.
const live = window.livesinger = {
  state: 'connecting', avatar: null, humanBones: [], audioPackets: 0, audioLevel: 0,
  pitchLog: [], mouthLog: [], syncErrorsMs: [], latencyMs: null, rtpMinusShow: null,
  posesReceived: 0, lastPoseT: null, onsetsEpochMs: [], playoutLog: [], outputLatencyMs: null,
};

// ---- scene ---------------------------------------------------------------------------
const canvas = document.getElementById('stage');
// A software GL (SwiftShader, llvmpipe) shares the CPU with the browser's own audio and
// network threads: draw without multisampling and at most 30 times a second there, so the
// picture never starves the sound (?fps=N overrides the cap).
function softwareGl() {
  const gl = document.createElement('canvas').getContext('webgl2');
  const info = gl && gl.getExtension('WEBGL_debug_renderer_info');
  const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
  return /swiftshader|llvmpipe|software/i.test(name);
}
live.softwareGl = softwareGl();
const maxFps = Number(params.get('fps')) || (live.softwareGl ? 30 : 0);
const renderer = new THREE.WebGLRenderer({
  canvas, antialias: !live.softwareGl, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
renderer.setSize(window.innerWidth, window.innerHeight);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x101426);
const camera = new THREE.PerspectiveCamera(30, window.innerWidth / window.innerHeight, 0.1, 50);
camera.position.set(0, 1.25, 3.4);
camera.lookAt(0, 1.0, 0);
scene.add(new THREE.HemisphereLight(0xffffff, 0x333355, 1.6));
const key = new THREE.DirectionalLight(0xffffff, 2.0);
key.position.set(1, 2, 3);
scene.add(key);
const floor = new THREE.Mesh(new THREE.CircleGeometry(1.2, 48),
  new THREE.MeshStandardMaterial({ color: 0x2a3160 }));
floor.rotation.x = -Math.PI / 2;
scene.add(floor);
window.addEventListener('resize', () => {
  renderer.setSize(window.innerWidth, window.innerHeight);
  camera.aspect = window.innerWidth / window.innerHeight;
  camera.updateProjectionMatrix();
});

let vrm = null;
const loader = new GLTFLoader();
loader.register((parser) => new VRMLoaderPlugin(parser));
loader.load('/avatar.vrm', (gltf) => {
  vrm = gltf.userData.vrm;
  VRMUtils.rotateVRM0(vrm); // VRM 0.x faces -Z; VRM 1.0 already faces the camera
  scene.add(vrm.scene);
  live.avatar = vrm.meta?.name ?? 'loaded';
  live.humanBones = Object.keys(vrm.humanoid.humanBones);
  live.expressions = vrm.expressionManager
    ? vrm.expressionManager.expressions.map((e) => e.expressionName) : [];
  setText('o-avatar', `${live.avatar} (${live.humanBones.length} bones)`);
}, undefined, (err) => {
  live.avatar = 'error: ' + err;
  setText('o-avatar', 'failed to load');
});

// ---- WebRTC --------------------------------------------------------------------------
const pc = new RTCPeerConnection();
const transceiver = pc.addTransceiver('audio', { direction: 'recvonly' });
const channel = pc.createDataChannel('pose', { ordered: false, maxRetransmits: 0 });
const poses = []; // pose frames waiting for their audio, sorted by show sample
const audioEl = document.getElementById('voice');

channel.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  if (msg.sync) { live.rtpMinusShow = msg.sync.rtp_minus_show; return; }
  live.posesReceived += 1;
  live.lastPoseT = msg.t;
  let i = poses.length;
  while (i > 0 && poses[i - 1].t > msg.t) i -= 1;
  poses.splice(i, 0, msg);
  if (poses.length > 600) poses.splice(0, poses.length - 600);
};

pc.ontrack = (event) => {
  const stream = event.streams[0] ?? new MediaStream([event.track]);
  audioEl.srcObject = stream;
  audioEl.play().catch(() => {
    const button = document.getElementById('start');
    button.hidden = false;
    button.onclick = () => { audioEl.play(); ctx.resume(); button.hidden = true; };
  });
  startAnalyser(stream);
};
pc.onconnectionstatechange = () => {
  live.state = pc.connectionState;
  setText('o-state', pc.connectionState);
};

async function connect() {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  const res = await fetch('/offer', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer' }) });
  if (!res.ok) { live.state = 'refused: ' + (await res.text()); setText('o-state', live.state); return; }
  await pc.setRemoteDescription(await res.json());
}
connect();

// The show sample whose audio is playing now, from the RTP timestamp of the frame the
// browser just played and the engine's RTP-to-show mapping.
function showSampleNow() {
  if (live.rtpMinusShow === null) return null;
  const sources = transceiver.receiver.getSynchronizationSources();
  if (!sources.length) return null;
  const src = sources[0];
  const now = Math.abs(src.timestamp - Date.now()) < 1e6 ? Date.now() : performance.now();
  const show = (src.rtpTimestamp - live.rtpMinusShow + 4294967296) % 4294967296;
  return show + (now - src.timestamp) * SAMPLE_RATE / 1000;
}

// ---- audio analysis (for the overlay and for tests) ----------------------------------
const ctx = new AudioContext({ sampleRate: SAMPLE_RATE });
let analyser = null;
const buf = new Float32Array(2048);
function startAnalyser(stream) {
  const source = ctx.createMediaStreamSource(stream);
  analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  source.connect(analyser);
  // Sound onsets (silence -> voice), stamped in wall-clock ms when they reach the output.
  const meter = ctx.createScriptProcessor(256, 1, 1);
  let quietFor = 0;
  meter.onaudioprocess = (event) => {
    const x = event.inputBuffer.getChannelData(0);
    let e = 0;
    for (let i = 0; i < x.length; i++) e += x[i] * x[i];
    const rms = Math.sqrt(e / x.length);
    if (rms < 0.003) { quietFor += x.length; return; }
    if (rms > 0.01 && quietFor > 0.05 * ctx.sampleRate) {
      const ts = ctx.getOutputTimestamp();
      const perf = ts.performanceTime + (event.playbackTime - ts.contextTime) * 1000;
      live.onsetsEpochMs.push(performance.timeOrigin + perf);
      if (live.onsetsEpochMs.length > 1000) live.onsetsEpochMs.shift();
    }
    if (rms > 0.01) quietFor = 0;
  };
  source.connect(meter);
  meter.connect(ctx.destination); // a processor only runs when connected; it outputs silence
  ctx.resume();
}

// Autocorrelation pitch (YIN's difference function, first dip below the threshold).
function estimatePitch(x, rate) {
  let energy = 0;
  for (let i = 0; i < x.length; i++) energy += x[i] * x[i];
  const rms = Math.sqrt(energy / x.length);
  if (rms < 0.005) return { hz: 0, rms };
  const minLag = Math.floor(rate / 1200), maxLag = Math.floor(rate / 70);
  const half = x.length - maxLag;
  const d = new Float32Array(maxLag + 1);
  let running = 0;
  for (let lag = 1; lag <= maxLag; lag++) {
    let s = 0;
    for (let i = 0; i < half; i++) { const v = x[i] - x[i + lag]; s += v * v; }
    running += s;
    d[lag] = s * lag / (running || 1);
  }
  for (let lag = minLag; lag < maxLag; lag++) {
    if (d[lag] < 0.15 && d[lag] <= d[lag + 1]) {
      const a = d[lag - 1], b = d[lag], c = d[lag + 1];
      const shift = (a - c) / (2 * (a - 2 * b + c) || 1);
      return { hz: rate / (lag + shift), rms };
    }
  }
  return { hz: 0, rms };
}

// ---- pose ----------------------------------------------------------------------------
function poseAt(sample) {
  // the two frames around the sample; expressions are interpolated between them
  let i = poses.findIndex((p) => p.t > sample);
  if (i === -1) i = poses.length;
  const a = poses[i - 1], b = poses[i];
  if (!a) return b ? { pose: b, t: b.t } : null;
  if (!b) return { pose: a, t: a.t };
  const w = (sample - a.t) / (b.t - a.t);
  const e = {};
  for (const k of new Set([...Object.keys(a.e), ...Object.keys(b.e)])) {
    e[k] = (a.e[k] ?? 0) * (1 - w) + (b.e[k] ?? 0) * w;
  }
  return { pose: { t: sample, b: w < 0.5 ? a.b : b.b, r: a.r, e }, t: sample };
}

const EXPRESSIONS = ['aa', 'ih', 'ou', 'ee', 'oh', 'blink', 'blinkLeft', 'blinkRight', 'happy'];
function applyPose(pose) {
  if (!vrm) return;
  for (const [name, q] of Object.entries(pose.b)) {
    const node = vrm.humanoid.getNormalizedBoneNode(name);
    if (node) node.quaternion.set(q[0], q[1], q[2], q[3]);
  }
  const hips = vrm.humanoid.getNormalizedBoneNode('hips');
  if (hips && pose.r) hips.position.set(pose.r[0], hips.position.y, pose.r[2]);
  if (vrm.expressionManager) {
    for (const name of EXPRESSIONS) vrm.expressionManager.setValue(name, pose.e[name] ?? 0);
  }
}

// ---- loop ----------------------------------------------------------------------------
const clock = new THREE.Clock();
let lastStats = 0;
let lastDrawMs = 0;
function frame(nowMs) {
  requestAnimationFrame(frame);
  if (maxFps && nowMs - lastDrawMs < 1000 / maxFps - 2) return;
  lastDrawMs = nowMs;
  const now = showSampleNow();
  if (now !== null) {
    // (wall-clock ms, show sample playing): when a cued sample was heard, for benchmarks
    live.playoutLog.push([performance.timeOrigin + performance.now(), now]);
    if (live.playoutLog.length > 1200) live.playoutLog.shift();
  }
  let applied = null;
  if (now !== null) {
    applied = poseAt(now);
    if (applied) {
      const err = (applied.t - now) / SAMPLE_RATE * 1000;
      live.syncErrorsMs.push(err);
      if (live.syncErrorsMs.length > 2000) live.syncErrorsMs.shift();
      setText('o-sync', `${err.toFixed(1)} ms`);
    }
    while (poses.length > 2 && poses[1].t < now - SAMPLE_RATE) poses.shift();
  } else if (poses.length) {
    applied = { pose: poses[poses.length - 1], t: poses[poses.length - 1].t };
    setText('o-sync', 'waiting for audio clock');
  }
  if (applied) {
    applyPose(applied.pose);
    const e = applied.pose.e;
    live.mouthLog.push({ t: applied.t, aa: e.aa ?? 0, ih: e.ih ?? 0, ou: e.ou ?? 0,
      ee: e.ee ?? 0, oh: e.oh ?? 0 });
    if (live.mouthLog.length > 3000) live.mouthLog.shift();
  }
  if (analyser && now !== null) {
    analyser.getFloatTimeDomainData(buf);
    const { hz, rms } = estimatePitch(buf, ctx.sampleRate);
    live.audioLevel = rms;
    // the analysed window ends now and spans ~43 ms: stamp it at its middle
    live.pitchLog.push({ t: now - buf.length / 2, hz, rms });
    if (live.pitchLog.length > 3000) live.pitchLog.shift();
  }
  if (vrm) vrm.update(clock.getDelta());
  renderer.render(scene, camera);
  if (performance.now() - lastStats > 500) { lastStats = performance.now(); updateStats(); }
}
requestAnimationFrame(frame);

async function updateStats() {
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      live.audioPackets = s.packetsReceived;
      if (s.jitterBufferEmittedCount) {
        live.latencyMs = 1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount;
      }
    }
  });
  setText('o-audio', `${live.audioPackets} packets, level ${live.audioLevel.toFixed(3)}`);
  live.outputLatencyMs = 1000 * ((ctx.baseLatency || 0) + (ctx.outputLatency || 0));
  if (live.latencyMs !== null) {
    setText('o-latency', `jitter buffer ${live.latencyMs.toFixed(0)} ms, ` +
      `output ${live.outputLatencyMs.toFixed(0)} ms`);
  }
}

// ---- overlay -------------------------------------------------------------------------
function setText(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }
const overlay = document.getElementById('overlay');
overlay.hidden = params.get('overlay') === '0';
window.addEventListener('keydown', (e) => { if (e.key === 'o' || e.key === 'O') overlay.hidden = !overlay.hidden; });

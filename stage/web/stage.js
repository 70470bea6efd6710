// livesinger stage renderer: receives the idol's voice and pose over WebRTC and draws the
// VRM avatar, showing each pose at the moment its audio is heard (not when it arrives).
//
// Two ways to receive the voice from the engine (?audio=datachannel|rtp forces one):
// - datachannel (the default where WebCodecs exists): 10 ms Opus frames on an unordered,
//   no-retransmit data channel beside the pose, decoded by WebCodecs' AudioDecoder and played
//   by an AudioWorklet (voice-worklet.js) with its own small adaptive jitter buffer. The
//   worklet says which show sample it outputs at which audio frame, and
//   AudioContext.getOutputTimestamp() says when that frame is heard.
// - rtp (the fallback, and always through Janus): the standard WebRTC audio track; the show
//   sample playing comes from getSynchronizationSources() and the RTP-to-show mapping, and
//   it is heard one audio output latency later (our best estimate of the element's sink).
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { VRMLoaderPlugin, VRMUtils } from '@pixiv/three-vrm';
import { VowelSync } from '/vowel-sync.js';

// Opened as /?token=..., the engine answered with a session cookie (HttpOnly, SameSite=Strict)
// that allows this page's files, the avatar and the offer below: nothing here handles tokens.
const params = new URLSearchParams(location.search);
const SAMPLE_RATE = 48000;

// Everything a director (or a test) may want to read lives here.
const live = window.livesinger = {
  state: 'connecting', avatar: null, humanBones: [], audioPackets: 0, audioLevel: 0,
  pitchLog: [], mouthLog: [], syncErrorsMs: [], latencyMs: null, rtpMinusShow: null,
  // end to end, per vowel (vowel-sync.js): drawn mouth against heard sound, ms
  vowelSyncMs: [], syncErrMsP50: null, syncErrMsP99: null,
  posesReceived: 0, lastPoseT: null, poseTimes: [], onsetsEpochMs: [], playoutLog: [], outputLatencyMs: null,
  path: null, voiceFrames: 0, voiceLost: 0, underruns: 0, concealedMs: 0, bufferMs: null,
  outputGlitches: 0, outputGlitchMs: 0, // the worklet's render thread late past its buffer
  skippedMs: 0, // a stall's backlog the worklet skipped to keep its latency
  bufferTargetMs: null, jitterBufferMinimumMs: null, janusClock: null, frameLatencyMs: 16.7, decodeErrors: 0,
  // the voice channel's trace (bounded): [perf ms, stream, show] per frame as it arrived and
  // as it was decoded, the worklet's level per report and each underrun with its cause
  trace: { arrivals: [], decoded: [], levels: [], underruns: [] },
};
function traced(list, row, max = 1500) { list.push(row); if (list.length > max) list.shift(); }
// the page's main thread busy for 50 ms or more (it relays every voice frame twice)
live.trace.longTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) traced(live.trace.longTasks, [e.startTime, e.duration], 200);
  }).observe({ type: 'longtask', buffered: true });
} catch (err) { /* no longtask timing here */ }

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
// /?janus=http://HOST:8088/janus&room=N watches the show through Janus (docs/janus.md):
// Janus offers, this page answers, and the pose arrives on Janus's own channel.
const janusUrl = params.get('janus');
const pc = new RTCPeerConnection();
let transceiver = null; // the RTP path's audio
// The audio output's latency: ?latency=interactive|balanced|playback or seconds; by default
// the smallest Chromium offers (0: here 2.7 ms of base latency + 8 ms of output, against
// 10 + 32 ms for 'interactive'). The worklet counts the render thread's glitches it causes.
function latencyHint() {
  const asked = params.get('latency');
  if (asked === null || asked === '') return 0;
  if (['interactive', 'balanced', 'playback'].includes(asked)) return asked;
  const seconds = Number(asked);
  if (Number.isFinite(seconds) && seconds >= 0 && seconds <= 1) return seconds;
  console.warn(`?latency=${asked}: want interactive, balanced, playback or seconds (0..1); using 0`);
  return 0;
}
live.latencyHint = latencyHint();
const ctx = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: live.latencyHint });
live.outputLatencyMs = 1000 * ((ctx.baseLatency || 0) + (ctx.outputLatency || 0));
async function lowLatencyPossible() {
  if (janusUrl || params.get('audio') === 'rtp') return false;
  if (typeof window.AudioDecoder !== 'function' || typeof AudioWorkletNode !== 'function') {
    return false;
  }
  try {
    const support = await AudioDecoder.isConfigSupported(
      { codec: 'opus', sampleRate: SAMPLE_RATE, numberOfChannels: 1 });
    return Boolean(support.supported);
  } catch (err) {
    return false;
  }
}
// Through Janus the pose comes on Janus's own channel (ondatachannel); this page still opens
// one of its own, as janus.js does: without it the answer may carry no SCTP association.
const channel = janusUrl ? pc.createDataChannel('viewer')
  : pc.createDataChannel('pose', { ordered: false, maxRetransmits: 0 });
const poses = []; // pose frames waiting for their audio, sorted by show sample
const vowelSync = new VowelSync();
live.vowelSyncMs = vowelSync.errorsMs;
const audioEl = document.getElementById('voice');

channel.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  if (msg.sync) { live.rtpMinusShow = msg.sync.rtp_minus_show; return; }
  if (msg.a !== undefined) noteJanusOffset(msg.a);
  live.posesReceived += 1;
  live.lastPoseT = msg.t;
  if (msg.e) vowelSync.notePose(msg.t, msg.e);
  live.poseTimes.push(msg.t); // (for tests: which frames arrived)
  if (live.poseTimes.length > 2000) live.poseTimes.shift();
  let i = poses.length;
  while (i > 0 && poses[i - 1].t > msg.t) i -= 1;
  poses.splice(i, 0, msg);
  if (poses.length > 600) poses.splice(0, poses.length - 600);
};

pc.ondatachannel = (event) => { event.channel.onmessage = channel.onmessage; };
pc.ontrack = (event) => {
  if (!transceiver) transceiver = event.transceiver;
  const stream = event.streams[0] ?? new MediaStream([event.track]);
  audioEl.srcObject = stream;
  audioEl.play().catch(() => {
    const button = document.getElementById('start');
    button.hidden = false;
    button.onclick = () => { audioEl.play(); ctx.resume(); button.hidden = true; };
  });
  startAnalyser(stream);
};
window.addEventListener('pagehide', () => pc.close()); // the engine frees this viewer now
pc.onconnectionstatechange = () => {
  live.state = pc.connectionState;
  setText('o-state', pc.connectionState);
};

async function connect() {
  live.path = (await lowLatencyPossible()) ? 'datachannel' : 'rtp';
  if (live.path === 'datachannel') await startVoiceChannel();
  else transceiver = pc.addTransceiver('audio', { direction: 'recvonly' });
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
if (janusUrl) live.path = 'rtp';
if (janusUrl) connectJanus().catch((err) => { live.state = 'janus: ' + err; setText('o-state', live.state); });
else connect();

// ---- through Janus ---------------------------------------------------------------------
async function janusCall(path, message) {
  const res = await fetch(janusUrl + path, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...message, transaction: Math.random().toString(36).slice(2) }) });
  const reply = await res.json();
  if (reply.janus === 'error') throw new Error(reply.error.reason);
  return reply;
}

async function connectJanus() {
  const room = Number(params.get('room'));
  const session = `/${(await janusCall('', { janus: 'create' })).data.id}`;
  const handle = `${session}/${(await janusCall(session, { janus: 'attach', plugin: 'janus.plugin.videoroom' })).data.id}`;
  setInterval(() => janusCall(session, { janus: 'keepalive' }).catch(() => {}), 25000);
  let feed = null;
  while (feed === null) { // the room's publisher: the engine
    const list = await janusCall(handle, { janus: 'message', body: { request: 'listparticipants', room } });
    const publisher = (list.plugindata.data.participants || []).find((p) => p.publisher);
    if (publisher) feed = publisher.id; else await new Promise((ok) => setTimeout(ok, 1000));
  }
  await janusCall(handle, { janus: 'message', body: { request: 'join', ptype: 'subscriber', room, streams: [{ feed }] } });
  let event = {};
  while (!event.jsep) event = await (await fetch(`${janusUrl}${session}?maxev=1`)).json();
  await pc.setRemoteDescription(event.jsep);
  for (const t of pc.getTransceivers()) {
    if (t.receiver.track.kind === 'audio') watchArrivals(t.receiver);
  }
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  await janusCall(handle, { janus: 'message', body: { request: 'start', room },
    jsep: { type: 'answer', sdp: pc.localDescription.sdp } });
}

// Janus rewrote the RTP timestamps: each pose message's "a" is the show sample heard at the
// start of the audio frame the engine had just sent as it left, which pairs with the RTP
// timestamp of the newest audio frame to have arrived (audio and data share one transport);
// the median over recent messages is this page's RTP-to-show offset. The arrivals come from
// an encoded-frame transform (rtp-arrivals.js, before the jitter buffer); a browser without
// RTCRtpScriptTransform estimates them from the playout and the jitter buffer's mean delay
// (live.janusClock says which; the estimate lags when the jitter buffer changes).
const janusOffsets = [];
let newestRtp = null; // RTP timestamp of the newest audio frame arrived (transform)
function watchArrivals(receiver) {
  if (typeof RTCRtpScriptTransform !== 'function') { live.janusClock = 'estimate'; return; }
  const worker = new Worker('/rtp-arrivals.js');
  worker.onmessage = (event) => { newestRtp = event.data; };
  receiver.transform = new RTCRtpScriptTransform(worker, { side: 'receiver' });
  live.janusClock = 'arrivals';
}
function noteJanusOffset(a) {
  let arriving = newestRtp;
  if (live.janusClock !== 'arrivals') {
    const sources = transceiver ? transceiver.receiver.getSynchronizationSources() : [];
    if (!sources.length || live.latencyMs === null) return;
    const src = sources[0];
    const now = Math.abs(src.timestamp - Date.now()) < 1e6 ? Date.now() : performance.now();
    arriving = src.rtpTimestamp + (now - src.timestamp + live.latencyMs) * SAMPLE_RATE / 1000;
  }
  if (arriving === null) return;
  janusOffsets.push(Math.round(arriving - a + 4294967296) % 4294967296);
  if (janusOffsets.length > 120) janusOffsets.shift();
  const base = janusOffsets[0]; // the median around the first (offsets wrap at 2^32)
  const rel = janusOffsets.map((o) => ((o - base + 6442450944) % 4294967296) - 2147483648);
  rel.sort((x, y) => x - y);
  live.rtpMinusShow = (base + rel[rel.length >> 1] + 4294967296) % 4294967296;
}

// ---- the low-latency path: data channel -> AudioDecoder -> AudioWorklet ----------------
const VOICE_HEADER = 20; // kind u8, channels u8, frame samples u16, stream i64, show i64
let voiceNode = null;
const clocks = []; // [heard perf ms, show sample, rate, context frame] from the worklet
const voiceShow = new Map(); // stream sample -> show sample, until decoded
async function startVoiceChannel() {
  await ctx.audioWorklet.addModule('/voice-worklet.js');
  // ?buffer=peak: the former jitter target (the peak of the last 10 s), for comparison
  voiceNode = new AudioWorkletNode(ctx, 'voice-player', { outputChannelCount: [1],
    processorOptions: { jitter: params.get('buffer') === 'peak' ? 'peak' : 'quantile',
                        outputMs: live.outputLatencyMs } });
  voiceNode.connect(ctx.destination);
  voiceNode.port.onmessage = (event) => onWorklet(event.data);
  const decoder = new AudioDecoder({
    output: (data) => {
      const stream = Math.round(data.timestamp * SAMPLE_RATE / 1e6);
      const pcm = new Float32Array(data.numberOfFrames);
      data.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
      data.close();
      const show = voiceShow.get(stream);
      voiceShow.delete(stream);
      traced(live.trace.decoded, [performance.now(), stream]);
      if (show !== undefined) voiceNode.port.postMessage({ stream, show, pcm }, [pcm.buffer]);
    },
    error: () => { live.decodeErrors += 1; },
  });
  decoder.configure({ codec: 'opus', sampleRate: SAMPLE_RATE, numberOfChannels: 1 });
  const voice = pc.createDataChannel('voice', { ordered: false, maxRetransmits: 0 });
  voice.binaryType = 'arraybuffer';
  let nextStream = null;
  voice.onmessage = (event) => {
    const view = new DataView(event.data);
    if (view.getUint8(0) !== 1 || decoder.state !== 'configured') return;
    const frameSamples = view.getUint16(2, true);
    const stream = Number(view.getBigInt64(4, true));
    const show = Number(view.getBigInt64(12, true));
    if (nextStream !== null && stream > nextStream) {
      live.voiceLost += Math.round((stream - nextStream) / frameSamples);
    }
    if (nextStream === null || stream >= nextStream) nextStream = stream + frameSamples;
    live.voiceFrames += 1;
    traced(live.trace.arrivals, [performance.now(), stream, show]);
    voiceShow.set(stream, show);
    if (voiceShow.size > 200) voiceShow.delete(voiceShow.keys().next().value);
    decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: stream * 1e6 / SAMPLE_RATE,
      data: new Uint8Array(event.data, VOICE_HEADER) }));
  };
  startAnalyser(voiceNode);
  setTimeout(() => {
    if (ctx.state === 'running') return; // no autoplay without a gesture here
    const button = document.getElementById('start');
    button.hidden = false;
    button.onclick = () => { ctx.resume(); button.hidden = true; };
  }, 1000);
}

// When the context's audio frame `frame` is heard, in performance.now() ms.
function heardPerfMs(frame) {
  const ts = ctx.getOutputTimestamp();
  return ts.performanceTime + (frame / ctx.sampleRate - ts.contextTime) * 1000;
}

function onWorklet(msg) {
  if (msg.type === 'underrun') {
    traced(live.trace.underruns, { perfMs: performance.now(), ...msg }, 100);
    return;
  }
  if (msg.type === 'onset') {
    const heard = heardPerfMs(msg.frame);
    live.onsetsEpochMs.push(performance.timeOrigin + heard);
    vowelSync.noteOnset(heard, msg.show);
    if (live.onsetsEpochMs.length > 1000) live.onsetsEpochMs.shift();
    return;
  }
  live.underruns = msg.underruns;
  live.concealedMs = msg.concealedMs;
  live.skippedMs = msg.skippedMs;
  live.outputGlitches = msg.glitches;
  live.outputGlitchMs = msg.glitchMs;
  live.bufferMs = msg.levelMs;
  live.bufferTargetMs = msg.targetMs;
  traced(live.trace.levels, [performance.now(), msg.frame, ctx.currentTime * 1000, msg.levelMs,
    msg.minLevelMs, msg.targetMs, msg.rate, msg.playing ? 1 : 0, msg.show]);
  if (msg.show === null || !msg.playing) return;
  clocks.push([heardPerfMs(msg.frame), msg.show, msg.rate, msg.frame]);
  if (clocks.length > 400) clocks.shift();
}

// The show sample heard at performance time `perfMs` (null while nothing plays).
function showHeardAt(perfMs) {
  if (live.path === 'datachannel') {
    if (!clocks.length) return null;
    let k = clocks.length - 1;
    while (k > 0 && clocks[k][0] > perfMs) k -= 1;
    const [at, show, rate] = clocks[k];
    return show + (perfMs - at) * SAMPLE_RATE * rate / 1000;
  }
  const playout = showSampleNow();
  if (playout === null) return null;
  // the element's sound leaves the output one output latency after its playout
  const sinkMs = live.outputLatencyMs ?? 0;
  return playout + (perfMs - performance.now() - sinkMs) * SAMPLE_RATE / 1000;
}

// When show sample `sample` is heard, in performance.now() ms (null while nothing plays).
function heardAtPerf(sample) {
  if (live.path === 'datachannel') {
    if (!clocks.length) return null;
    let k = clocks.length - 1;
    while (k > 0 && clocks[k][1] > sample) k -= 1;
    const [at, show, rate] = clocks[k];
    return at + (sample - show) * 1000 / (SAMPLE_RATE * rate);
  }
  const now = performance.now();
  const heardNow = showHeardAt(now);
  return heardNow === null ? null : now + (sample - heardNow) * 1000 / SAMPLE_RATE;
}

// The show sample the analyser sees now (rendered by the context, not yet heard).
function showAnalysedNow() {
  if (live.path !== 'datachannel') return showSampleNow();
  if (!clocks.length) return null;
  const [, show, rate, frame] = clocks[clocks.length - 1];
  return show + (ctx.currentTime * ctx.sampleRate - frame) * rate;
}

// The show sample whose audio is playing now, from the RTP timestamp of the frame the
// browser just played and the engine's RTP-to-show mapping (the rtp path).
function showSampleNow() {
  if (live.rtpMinusShow === null || transceiver === null) return null;
  const sources = transceiver.receiver.getSynchronizationSources();
  if (!sources.length) return null;
  const src = sources[0];
  const now = Math.abs(src.timestamp - Date.now()) < 1e6 ? Date.now() : performance.now();
  const show = (src.rtpTimestamp - live.rtpMinusShow + 4294967296) % 4294967296;
  return show + (now - src.timestamp) * SAMPLE_RATE / 1000;
}

// ---- audio analysis (for the overlay and for tests) ----------------------------------
let analyser = null;
const buf = new Float32Array(2048);
function startAnalyser(stream) {
  const source = stream instanceof AudioNode ? stream : ctx.createMediaStreamSource(stream);
  analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  source.connect(analyser);
  if (stream instanceof AudioNode) { ctx.resume(); return; } // the worklet finds its onsets
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
      let first = 0; // the onset's own sample in the block, not the block's start
      while (first < x.length - 1 && Math.abs(x[first]) <= 0.02) first += 1;
      const ts = ctx.getOutputTimestamp();
      const perf = ts.performanceTime
        + (event.playbackTime + first / ctx.sampleRate - ts.contextTime) * 1000;
      live.onsetsEpochMs.push(performance.timeOrigin + perf);
      const show = showHeardAt(perf); // (the playout mapping: the RTP track has no stamps)
      if (show !== null) vowelSync.noteOnset(perf, show);
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
// Each drawn frame shows the pose of the sample heard when the frame is *presented*: the
// next vsync (rAF timestamps are vsyncs; a frame drawn now is on screen from the next one).
// Sync is measured afterwards against what was really output: the frame's presentation
// (the next rAF's timestamp) minus when its pose's sample was heard (positive: the sound
// came first).
const clock = new THREE.Clock();
let lastStats = 0;
let lastDrawMs = 0;
let lastRafMs = null;
let shown = null; // {t, drawnMs}: the frame drawn last, waiting to be presented
function frame(nowMs) {
  requestAnimationFrame(frame);
  if (lastRafMs !== null) { // one vsync, measured (what a drawn frame waits to be shown)
    live.frameLatencyMs += 0.05 * (Math.min(nowMs - lastRafMs, 100) - live.frameLatencyMs);
  }
  lastRafMs = nowMs;
  if (shown !== null) {
    const heard = heardAtPerf(shown.t);
    if (heard !== null) {
      const err = nowMs - heard;
      live.syncErrorsMs.push(err);
      if (live.syncErrorsMs.length > 2000) live.syncErrorsMs.shift();
    }
    vowelSync.notePresented(nowMs, shown.mouth);
    shown = null;
  }
  if (maxFps && nowMs - lastDrawMs < 1000 / maxFps - 2) return;
  lastDrawMs = nowMs;
  const heardNow = showHeardAt(performance.now());
  if (heardNow !== null) {
    // (wall-clock ms, show sample heard): when a cued sample was heard, for benchmarks
    live.playoutLog.push([performance.timeOrigin + performance.now(), heardNow]);
    if (live.playoutLog.length > 1200) live.playoutLog.shift();
  }
  const target = showHeardAt(nowMs + live.frameLatencyMs);
  let applied = null;
  if (target !== null) {
    applied = poseAt(target);
    if (applied) {
      shown = { t: applied.t, drawnMs: nowMs, mouth: VowelSync.opening(applied.pose.e) };
    }
    while (poses.length > 2 && poses[1].t < target - SAMPLE_RATE) poses.shift();
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
  const analysed = showAnalysedNow();
  if (analyser && analysed !== null) {
    analyser.getFloatTimeDomainData(buf);
    const { hz, rms } = estimatePitch(buf, ctx.sampleRate);
    live.audioLevel = rms;
    // the analysed window ends now and spans ~43 ms: stamp it at its middle
    live.pitchLog.push({ t: analysed - buf.length / 2, hz, rms });
    if (live.pitchLog.length > 3000) live.pitchLog.shift();
  }
  if (vrm) vrm.update(clock.getDelta());
  renderer.render(scene, camera);
  if (performance.now() - lastStats > 500) { lastStats = performance.now(); updateStats(); }
}
requestAnimationFrame(frame);

const jitterHistory = []; // [delay s, emitted, minimum delay s] at the last few stats
async function updateStats() {
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      live.audioPackets = s.packetsReceived;
      // the last ~2 s (the stats are running sums): where NetEq has settled, not its start
      const now = [s.jitterBufferDelay, s.jitterBufferEmittedCount,
        s.jitterBufferMinimumDelay ?? 0];
      const old = jitterHistory.length > 4 ? jitterHistory.shift() : (jitterHistory[0] ?? null);
      jitterHistory.push(now);
      const count = old ? now[1] - old[1] : now[1];
      if (count > 0) {
        live.latencyMs = 1000 * (now[0] - (old ? old[0] : 0)) / count;
        live.jitterBufferMinimumMs = s.jitterBufferMinimumDelay === undefined ? null
          : 1000 * (now[2] - (old ? old[2] : 0)) / count;
      }
    }
  });
  const outputMs = 1000 * ((ctx.baseLatency || 0) + (ctx.outputLatency || 0));
  if (voiceNode && outputMs !== live.outputLatencyMs) voiceNode.port.postMessage({ outputMs });
  live.outputLatencyMs = outputMs;
  vowelSync.evaluate(performance.now());
  const sync = vowelSync.stats();
  live.syncErrMsP50 = sync.p50;
  live.syncErrMsP99 = sync.p99;
  if (sync.n) {
    setText('o-sync', `${sync.p50.toFixed(1)} ms median, ${sync.p99.toFixed(1)} ms p99 ` +
      `(${sync.n} vowels; + sound first)`);
  }
  if (live.path === 'datachannel') {
    live.audioPackets = live.voiceFrames;
    if (live.bufferMs !== null) live.latencyMs = live.bufferMs;
    setText('o-audio', `${live.voiceFrames} frames (data channel), ${live.voiceLost} lost, ` +
      `${live.underruns} underruns, ${live.outputGlitches} output glitches, level ${live.audioLevel.toFixed(3)}`);
  } else {
    setText('o-audio', `${live.audioPackets} packets (rtp), level ${live.audioLevel.toFixed(3)}`);
  }
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

// ---- follow mode on the overlay (docs/follow.md): the follower's state from /status -----
function followText(follow) {
  if (!follow || !follow.armed) return 'off';
  if (follow.input_lost) return `${follow.part}: input lost: ${follow.input_error}`;
  if (!follow.started) return `${follow.part}: armed, waiting for the performer (${follow.input})`;
  return `${follow.part}: beat ${follow.beat.toFixed(1)}, ${follow.bpm.toFixed(1)} bpm, ` +
    `confidence ${follow.confidence.toFixed(2)}${follow.holding ? ', holding' : ''}`;
}
async function pollFollow() {
  if (overlay.hidden) return;
  try {
    const res = await fetch('/status', { cache: 'no-store' });
    if (res.ok) setText('o-follow', followText((await res.json()).follow));
  } catch (e) { /* the next poll tries again */ }
}
setInterval(pollFollow, 1000);

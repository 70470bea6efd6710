// livesinger low-latency voice player (AudioWorklet): plays the show's decoded 10 ms Opus
// frames from a small adaptive jitter buffer, so the page, not the browser's NetEq, decides
// how little to buffer.
//
// in  (port): {stream, show, pcm: Float32Array} per decoded frame (stream: the frame's
//             strictly increasing sample stamp; show: the show sample heard at pcm[0]).
// out (port): {type: 'clock', frame, show, rate, levelMs, minLevelMs, targetMs, underruns,
//             concealedMs} every few render quanta (show: the show sample at output frame
//             `frame`; minLevelMs: the lowest level since the last report);
//             {type: 'underrun', frame, pos, lastEnd, frames, targetMs} when it empties;
//             {type: 'onset', frame, show} when the voice starts after a silence.
//
// Buffer: each frame's jitter is how much later it arrived than the earliest frame of the
// last ~2 s (arrival frame - stream sample, against their minimum: the engine sends every
// frame at its play time, so the stream sample runs with real time). The target is the
// *peak* jitter of the last ~10 s plus one render quantum and one frame (the level falls by a
// frame between arrivals): what empties a buffer is a rare stall (the engine's event loop,
// the page's main thread or the machine not running either for tens of ms: a burst of
// consecutive late frames), which a quantile over frames never sees. The read rate is
// nudged (at most ±0.6 %, below 11 cents) to hold the buffer there — that also absorbs the
// drift between the engine's clock and the sound card's. A missing frame with later ones
// waiting is concealed (the last 10 ms repeated, fading); an empty buffer fades out, counts
// an underrun and rebuffers.
const QUANTUM = 128;
const MIN_TARGET = 256; // samples: ~5 ms on top of the arrival jitter
const MAX_TARGET = 9600; // 200 ms
const MAX_RATE_STEP = 0.006;
const REPORT_EVERY = 4; // quanta (~10.7 ms)
const HISTORY = 480;
const BASE_FRAMES = 200; // ~2 s: the earliest arrival the jitter is measured against
const PEAK_FRAMES = 1000; // ~10 s: the window the target holds the peak jitter over

class VoicePlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frames = []; // sorted by stream sample: {stream, show, pcm}
    this.readPos = null; // stream sample (fractional) of the next output sample
    this.playing = false;
    this.rate = 1;
    this.target = 960;
    this.lateness = []; // (arrival frame - stream sample) per frame, over ~2 s
    this.jitter = []; // each frame's lateness over the earliest of the 2 s before it, ~10 s
    this.history = new Float32Array(HISTORY);
    this.historyAt = 0;
    this.concealGain = 0;
    this.concealIndex = 0;
    this.fadeIn = 0;
    this.underruns = 0;
    this.concealed = 0;
    this.quanta = 0;
    this.minLevel = Infinity; // the lowest level since the last report (samples)
    this.quietFor = 0;
    this.lastShow = null;
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(frame) {
    if (this.readPos !== null && frame.stream + frame.pcm.length <= this.readPos) return; // late
    let i = this.frames.length;
    while (i > 0 && this.frames[i - 1].stream > frame.stream) i -= 1;
    if (i > 0 && this.frames[i - 1].stream === frame.stream) return; // duplicate
    this.frames.splice(i, 0, frame);
    const lateness = currentFrame - frame.stream;
    this.lateness.push(lateness);
    if (this.lateness.length > BASE_FRAMES) this.lateness.shift();
    let earliest = lateness;
    for (const l of this.lateness) earliest = Math.min(earliest, l);
    this.jitter.push(lateness - earliest);
    if (this.jitter.length > PEAK_FRAMES) this.jitter.shift();
    let peak = 0;
    for (const j of this.jitter) peak = Math.max(peak, j);
    // the level falls by a whole frame between two arrivals (a sawtooth): hold one frame
    // more than the jitter, or every arrival a little late empties the buffer
    const wanted = Math.min(MAX_TARGET,
                            frame.pcm.length + Math.max(MIN_TARGET, peak + QUANTUM));
    // grow at once; shrink slowly once the peak has left the window
    this.target = wanted > this.target ? wanted : this.target + 0.02 * (wanted - this.target);
  }

  level() {
    if (!this.frames.length || this.readPos === null) return 0;
    const last = this.frames[this.frames.length - 1];
    return last.stream + last.pcm.length - this.readPos;
  }

  sampleAt(pos) {
    // the frame holding stream sample `pos` (frames are few: a linear scan is enough)
    for (const f of this.frames) {
      if (pos < f.stream) return null;
      if (pos < f.stream + f.pcm.length) return f;
    }
    return null;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing) {
      if (this.frames.length) {
        if (this.readPos === null || this.frames[0].stream > this.readPos) {
          this.readPos = this.frames[0].stream;
        }
        if (this.level() >= this.target) { this.playing = true; this.fadeIn = 0; }
      }
    }
    let show0 = null;
    for (let i = 0; i < out.length; i++) {
      let y = 0;
      if (this.playing) {
        const pos = this.readPos;
        const base = Math.floor(pos);
        const f = this.sampleAt(base);
        if (f) {
          const k = base - f.stream;
          const a = f.pcm[k];
          const next = k + 1 < f.pcm.length ? f.pcm[k + 1] : (this.sampleAt(base + 1)?.pcm[0] ?? a);
          y = a + (next - a) * (pos - base);
          if (show0 === null) show0 = f.show + (pos - f.stream);
          this.lastShow = f.show + (pos - f.stream);
          if (this.fadeIn < 1) { y *= this.fadeIn; this.fadeIn = Math.min(1, this.fadeIn + 1 / 120); }
          this.concealGain = 1;
          this.concealIndex = 0;
        } else {
          // lost or not yet here: repeat the last 10 ms, fading
          y = this.history[(this.historyAt + this.concealIndex) % HISTORY] * this.concealGain;
          this.concealIndex += 1;
          this.concealGain *= 0.9985;
          this.concealed += 1;
          this.fadeIn = 0.3;
          if (show0 === null && this.lastShow !== null) show0 = this.lastShow + 1;
          if (this.lastShow !== null) this.lastShow += 1;
          if (!this.frames.length || this.frames[this.frames.length - 1].stream + 
              this.frames[this.frames.length - 1].pcm.length <= pos) {
            if (this.playing) {
              this.underruns += 1;
              this.port.postMessage({ type: 'underrun', frame: currentFrame, pos,
                frames: this.frames.length, targetMs: 1000 * this.target / sampleRate,
                lastEnd: this.frames.length ? this.frames[this.frames.length - 1].stream
                  + this.frames[this.frames.length - 1].pcm.length : null });
            }
            this.playing = false; // empty: rebuffer to the target
          }
        }
        this.readPos += this.rate;
      }
      if (!this.playing && this.concealGain > 0.001) {
        y = this.history[(this.historyAt + this.concealIndex) % HISTORY] * this.concealGain;
        this.concealIndex += 1;
        this.concealGain *= 0.995;
      }
      out[i] = y;
      this.history[this.historyAt] = y;
      this.historyAt = (this.historyAt + 1) % HISTORY;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    // frames fully played are gone
    while (this.frames.length && this.readPos !== null &&
           this.frames[0].stream + this.frames[0].pcm.length <= this.readPos - 1) {
      this.frames.shift();
    }
    // hold the buffer at its target: a gentle rate change (also the clocks' drift)
    if (this.playing) {
      const error = (this.level() - this.target) / Math.max(this.target, 480);
      this.rate = 1 + Math.max(-MAX_RATE_STEP, Math.min(MAX_RATE_STEP, 0.01 * error));
      if (this.level() > this.target + 4800) { // a backlog (the page stalled): skip it
        const last = this.frames[this.frames.length - 1];
        this.readPos = last.stream + last.pcm.length - this.target;
        this.fadeIn = 0;
      }
    }
    // voice onsets (silence -> voice) at the output
    let e = 0;
    for (let i = 0; i < out.length; i++) e += out[i] * out[i];
    const rms = Math.sqrt(e / out.length);
    if (rms > 0.01 && this.quietFor > 0.05 * sampleRate && show0 !== null) {
      this.port.postMessage({ type: 'onset', frame: currentFrame, show: show0 });
    }
    if (rms < 0.003) this.quietFor += out.length; else if (rms > 0.01) this.quietFor = 0;
    this.quanta += 1;
    this.minLevel = Math.min(this.minLevel, this.playing ? this.level() : 0);
    if (this.quanta % REPORT_EVERY === 0) {
      this.port.postMessage({ type: 'clock', frame: currentFrame, show: show0,
        rate: this.rate, playing: this.playing, levelMs: 1000 * this.level() / sampleRate,
        targetMs: 1000 * this.target / sampleRate, underruns: this.underruns,
        concealedMs: 1000 * this.concealed / sampleRate,
        minLevelMs: 1000 * this.minLevel / sampleRate });
      this.minLevel = Infinity;
    }
    return true;
  }
}

registerProcessor('voice-player', VoicePlayer);

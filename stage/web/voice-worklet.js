// livesinger low-latency voice player (AudioWorklet): plays the show's decoded 10 ms Opus
// frames from a small adaptive jitter buffer, so the page, not the browser's NetEq, decides
// how little to buffer.
//
// in  (port): {stream, show, pcm: Float32Array} per decoded frame (stream: the frame's
//             strictly increasing sample stamp; show: the show sample heard at pcm[0]);
//             {outputMs} when the context's output latency is known.
// out (port): {type: 'clock', frame, show, rate, levelMs, minLevelMs, targetMs, underruns,
//             concealedMs, skippedMs, glitches, glitchMs} every few render quanta (show: the
//             show sample at output frame `frame`; minLevelMs: the lowest level since the
//             last report);
//             {type: 'underrun', frame, pos, lastEnd, frames, targetMs} when it empties;
//             {type: 'onset', frame, show} when the voice starts after a silence.
//
// Buffer: each frame's jitter is how much later it arrived than the earliest frame of the
// last ~2 s (arrival frame - stream sample, against their minimum: the engine sends every
// frame at its play time, so the stream sample runs with real time). The target, as NetEq
// sizes its own, is a high quantile (95 %) of that jitter over the last ~10 s plus one render
// quantum and one frame (the level falls by a frame between arrivals), quick to grow and slow
// to shrink: after an underrun it also holds the jitter of the frame that ended it (the
// stall's size, up to 80 ms), decaying with a ~5 s time constant, so a stall that recurs is
// covered while a rare one costs one concealed gap rather than a buffer sized on it for good
// (processorOptions.jitter 'peak': the former target, the peak of the last ~10 s). The read
// rate is nudged (at most ±0.6 %, below 11 cents) to hold the buffer there — that also
// absorbs the drift between the engine's clock and the sound card's. A missing frame with
// later ones waiting is concealed (the last 10 ms repeated, fading); an empty buffer fades
// out, counts an underrun and rebuffers to the target, then plays from the target's depth:
// the backlog the stall left is skipped (skippedMs), so a stall costs no lasting latency.
//
// Output glitches: the render thread running late by more than the output buffer
// (processorOptions.outputMs) is a glitch the page can see (its wall clock, Date.now(),
// against the audio frames rendered): counted with the time lost, in every clock report.
const QUANTUM = 128;
const MIN_TARGET = 256; // samples: ~5 ms on top of the arrival jitter
const MAX_TARGET = 9600; // 200 ms
const MAX_RATE_STEP = 0.006;
const REPORT_EVERY = 4; // quanta (~10.7 ms)
const HISTORY = 480;
const BASE_FRAMES = 200; // ~2 s: the earliest arrival the jitter is measured against
const PEAK_FRAMES = 1000; // ~10 s: the window the target's quantile (or peak) is taken over
const QUANTILE = 0.95;
const QUANTILE_EVERY = 10; // arrivals between two sorts of the window
const HOLD_DECAY_S = 5; // time constant of the jitter held after an underrun
const HOLD_MAX = 3840; // 80 ms: a longer stall (the machine frozen) is not worth the latency
const GLITCH_BASE_S = 10; // the render thread's earliest lateness is measured over this

class VoicePlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.peakMode = opts.jitter === 'peak';
    this.outputMs = Number(opts.outputMs) || 10;
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
    this.skipped = 0; // samples of a stall's backlog skipped when playing resumed
    this.quanta = 0;
    this.minLevel = Infinity; // the lowest level since the last report (samples)
    this.quietFor = 0;
    this.lastShow = null;
    this.quantileJitter = 0;
    this.held = 0; // jitter held after an underrun (samples), decaying
    this.heldAt = 0; // context frame it was set at
    this.awaitingLate = false; // an underrun happened: the next frame to arrive ends it
    this.glitches = 0;
    this.glitchMs = 0;
    this.renderLate = false;
    this.renderLateMs = 0;
    this.arrivals = 0;
    this.baseOffset = null; // the smallest Date.now() - audio ms over the last ~10 s
    this.baseOffsetAt = 0;
    this.nextBaseOffset = null;
    this.port.onmessage = (event) => {
      if (event.data && event.data.outputMs !== undefined) {
        this.outputMs = Number(event.data.outputMs) || this.outputMs;
        return;
      }
      this.receive(event.data);
    };
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
    const wanted = Math.min(MAX_TARGET,
                            frame.pcm.length + Math.max(MIN_TARGET, this.jitterEstimate(
                              lateness - earliest) + QUANTUM));
    // grow at once; shrink slowly (the rate control then drains the level by <= 0.6 %)
    this.target = wanted > this.target ? wanted : this.target + 0.02 * (wanted - this.target);
  }

  // The jitter to cover (samples): a high quantile of the window, or what an underrun's
  // late frame showed, held and decaying — or, in 'peak' mode, the window's peak.
  jitterEstimate(latest) {
    if (this.peakMode) {
      let peak = 0;
      for (const j of this.jitter) peak = Math.max(peak, j);
      return peak;
    }
    if (this.awaitingLate) { // the frame that ends an underrun: how long the stall was
      this.awaitingLate = false;
      this.held = Math.min(HOLD_MAX, Math.max(this.held * this.heldDecay(), latest));
      this.heldAt = currentFrame;
    }
    this.arrivals += 1;
    if (this.arrivals % QUANTILE_EVERY === 0 || this.jitter.length < QUANTILE_EVERY) {
      const sorted = Float64Array.from(this.jitter).sort();
      this.quantileJitter = sorted[Math.min(sorted.length - 1,
                                            Math.floor(QUANTILE * sorted.length))];
    }
    return Math.max(this.quantileJitter, this.held * this.heldDecay());
  }

  heldDecay() {
    return Math.exp(-(currentFrame - this.heldAt) / (HOLD_DECAY_S * sampleRate));
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

  // The render thread late by more than the output buffer holds: a glitch (counted once per
  // late spell, with how late it ran beyond the buffer).
  watchRender() {
    const offset = Date.now() - 1000 * currentFrame / sampleRate;
    if (this.baseOffset === null || offset < this.baseOffset) this.baseOffset = offset;
    if (this.nextBaseOffset === null || offset < this.nextBaseOffset) this.nextBaseOffset = offset;
    if (currentFrame - this.baseOffsetAt > GLITCH_BASE_S * sampleRate) { // forget old minima
      this.baseOffset = this.nextBaseOffset;
      this.nextBaseOffset = null;
      this.baseOffsetAt = currentFrame;
    }
    const late = offset - this.baseOffset - this.outputMs;
    if (late > 0 && !this.renderLate) { this.glitches += 1; this.glitchMs += late; }
    else if (late > 0 && late > this.renderLateMs) this.glitchMs += late - this.renderLateMs;
    this.renderLate = late > 0;
    this.renderLateMs = late > 0 ? late : 0;
  }

  process(_inputs, outputs) {
    this.watchRender();
    const out = outputs[0][0];
    if (!this.playing) {
      if (this.frames.length) {
        if (this.readPos === null || this.frames[0].stream > this.readPos) {
          this.readPos = this.frames[0].stream;
        }
        if (this.level() >= this.target) {
          // (re)starting: play from the target's depth, not from the backlog a stall left
          // (its time was concealed; playing it late would keep the latency it added)
          const skip = this.peakMode ? 0 : Math.floor(this.level() - this.target);
          if (skip > 0) { this.readPos += skip; this.skipped += skip; }
          this.playing = true;
          this.fadeIn = 0;
        }
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
              this.awaitingLate = true;
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
        glitches: this.glitches, glitchMs: this.glitchMs,
        skippedMs: 1000 * this.skipped / sampleRate,
        minLevelMs: 1000 * this.minLevel / sampleRate });
      this.minLevel = Infinity;
    }
    return true;
  }
}

registerProcessor('voice-player', VoicePlayer);

// livesinger stage page: pose/audio sync measured end to end, per sung vowel, against what
// was heard and what was shown — not against the clock the page schedules poses with.
//
// For each vowel onset (silence -> voice):
// - heard: the moment the sound's first samples reached the audio output. The low-latency
//   path's worklet finds the onset in the samples it outputs (its output frame, through
//   AudioContext.getOutputTimestamp()); the RTP path's analyser finds it in the received
//   track as the context renders it (playbackTime, same mapping). Each onset comes with the
//   show sample heard then (the worklet's own bookkeeping; on RTP, the playout mapping).
// - shown: when the drawn mouth crossed half its opening for that vowel, interpolated
//   between the two presented frames around the crossing (a frame is presented at the next
//   animation frame's timestamp); the pose stream itself says at which show sample the mouth
//   crosses that level, so the engine's own lead of the mouth over the sound is taken off.
// error = shown - heard(the crossing's show sample), in ms: positive, the sound came first
// (EBU R37 allows +5 ms); negative, the picture came first (it allows -15 ms).
const SAMPLE_RATE = 48000;
const QUIET = 0.15; // mouth opening below this is closed
const KEEP = 4000;

function push(list, row, max = KEEP) { list.push(row); if (list.length > max) list.shift(); }

export class VowelSync {
  constructor() {
    this.poses = []; // [show sample, mouth opening] as sent by the engine, sorted
    this.presented = []; // [presented perf ms, mouth opening drawn]
    this.onsets = []; // [heard perf ms, show sample heard then], waiting to be measured
    this.errorsMs = []; // one per vowel measured
  }

  static opening(e) {
    return Math.max(e.aa ?? 0, e.ih ?? 0, e.ou ?? 0, e.ee ?? 0, e.oh ?? 0);
  }

  /** A pose frame from the engine (any order). */
  notePose(t, e) {
    const row = [t, VowelSync.opening(e)];
    let i = this.poses.length;
    while (i > 0 && this.poses[i - 1][0] > t) i -= 1;
    this.poses.splice(i, 0, row);
    if (this.poses.length > KEEP) this.poses.shift();
  }

  /** A drawn frame, once presented: when, and how open its mouth was. */
  notePresented(presentedMs, opening) { push(this.presented, [presentedMs, opening]); }

  /** A sound onset at the output: when it was heard, and the show sample heard then. */
  noteOnset(heardMs, show) { push(this.onsets, [heardMs, show], 100); }

  /** Measure the onsets heard before `nowMs - settleMs` (their frames are all presented). */
  evaluate(nowMs, settleMs = 700) {
    while (this.onsets.length && this.onsets[0][0] < nowMs - settleMs) {
      const [heard, show] = this.onsets.shift();
      const err = this.measure(heard, show);
      if (err !== null) push(this.errorsMs, err, 2000);
    }
  }

  measure(heardMs, onsetShow) {
    // the engine's mouth for this vowel: its opening over the first 400 ms, and the show
    // sample where it first crossed half that after being closed (up to 300 ms before)
    const from = onsetShow - 0.3 * SAMPLE_RATE, to = onsetShow + 0.4 * SAMPLE_RATE;
    const span = this.poses.filter(([t]) => t >= from && t <= to);
    if (span.length < 4) return null;
    const peak = Math.max(...span.map(([, m]) => m));
    if (peak < 2 * QUIET) return null;
    const level = 0.5 * peak;
    let crossShow = null;
    for (let i = 1; i < span.length; i++) {
      const [t0, m0] = span[i - 1], [t1, m1] = span[i];
      if (m0 < level && m1 >= level) {
        crossShow = t0 + (level - m0) / (m1 - m0) * (t1 - t0);
        break;
      }
    }
    if (crossShow === null || span[0][1] >= level) return null;
    const crossHeard = heardMs + (crossShow - onsetShow) * 1000 / SAMPLE_RATE;
    // the drawn mouth crossing the same level, near then
    const frames = this.presented.filter(([p]) => p > crossHeard - 250 && p < crossHeard + 250);
    for (let i = 1; i < frames.length; i++) {
      const [p0, m0] = frames[i - 1], [p1, m1] = frames[i];
      if (m0 < level && m1 >= level) {
        const shown = p0 + (level - m0) / (m1 - m0) * (p1 - p0);
        return shown - crossHeard;
      }
    }
    return null;
  }

  /** {p50 (signed), p99 (of |error|), n} over the vowels measured, or nulls. */
  stats() {
    const n = this.errorsMs.length;
    if (!n) return { p50: null, p99: null, n: 0 };
    const signed = this.errorsMs.slice().sort((a, b) => a - b);
    const abs = this.errorsMs.map(Math.abs).sort((a, b) => a - b);
    return { p50: signed[Math.floor((n - 1) / 2)], p99: abs[Math.min(n - 1, Math.floor(0.99 * n))], n };
  }
}

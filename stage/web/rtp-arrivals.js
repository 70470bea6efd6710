// The stage page's encoded-frame transform for its audio through Janus (RTCRtpScriptTransform):
// passes every frame on untouched and tells the page the RTP timestamp of each as it arrives,
// before the jitter buffer. Paired with a pose message's "a" (the show sample of the audio the
// engine had just sent), it gives the page its RTP-to-show offset (stage.js).
/* global onrtctransform */
onrtctransform = (event) => {
  const { readable, writable } = event.transformer;
  readable.pipeThrough(new TransformStream({
    transform(frame, controller) {
      const meta = frame.getMetadata ? frame.getMetadata() : {};
      postMessage(meta.rtpTimestamp ?? frame.timestamp);
      controller.enqueue(frame);
    },
  })).pipeTo(writable);
};

// Injected into a page by the tests and benches (never served by the kiosk): a stamped camera and a reader of the
// stamps in a received picture, for glass-to-glass delay. The stamp is `core::frame_stamp`'s: a band across the top,
// 1/20 of the picture high, cut into 40 blocks; blocks 0-3 are 1010, 36-39 are 0101, 4-35 the low 32 bits of the
// capture time in Unix milliseconds, most significant first; white is 1, black is 0.
(() => {
  if (window.mmMeasure) return true;
  const BLOCKS = 40;
  const HEAD = [1, 0, 1, 0];
  const TAIL = [0, 1, 0, 1];
  const span = (i, w) => {
    const x0 = Math.floor((i * w) / BLOCKS);
    return [x0, Math.max(Math.floor(((i + 1) * w) / BLOCKS), x0 + 1)];
  };
  const band = (h) => Math.max(Math.floor(h / 20), 2);

  function drawStamp(ctx, w, h, stamp) {
    const bits = [...HEAD];
    for (let i = 31; i >= 0; i--) bits.push((stamp >>> i) & 1);
    bits.push(...TAIL);
    const b = band(h);
    bits.forEach((bit, i) => {
      const [x0, x1] = span(i, w);
      ctx.fillStyle = bit ? "#fff" : "#000";
      ctx.fillRect(x0, 0, x1 - x0, b);
    });
  }

  function readStamp(data, w, h) {
    const b = band(h);
    const r0 = Math.floor(b / 4);
    const r1 = Math.max(Math.floor((b * 3) / 4), r0 + 1);
    const bits = [];
    for (let i = 0; i < BLOCKS; i++) {
      const [x0, x1] = span(i, w);
      const c0 = x0 + Math.floor((x1 - x0) / 4);
      const c1 = Math.max(x0 + Math.floor(((x1 - x0) * 3) / 4), c0 + 1);
      let sum = 0, n = 0;
      for (let y = r0; y < r1; y++) {
        for (let x = c0; x < c1; x++) {
          const p = (y * w + x) * 4;
          sum += 0.299 * data[p] + 0.587 * data[p + 1] + 0.114 * data[p + 2];
          n++;
        }
      }
      bits.push(n && sum / n >= 128 ? 1 : 0);
    }
    if (HEAD.some((v, i) => bits[i] !== v) || TAIL.some((v, i) => bits[36 + i] !== v)) return null;
    let stamp = 0;
    for (let i = 4; i < 36; i++) stamp = ((stamp << 1) | bits[i]) >>> 0;
    return stamp;
  }

  const m = {
    samples: [],
    // A 1280x720 camera at 30 fps: moving shapes (work for the encoder) under the stamp band, and a quiet tone.
    stampedStream(width = 1280, height = 720, fps = 30) {
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext("2d");
      let n = 0;
      const draw = () => {
        n++;
        for (let i = 0; i < 8; i++) {
          ctx.fillStyle = `hsl(${(i * 45 + n * 3) % 360}, 70%, 50%)`;
          ctx.fillRect((i * width) / 8, 0, width / 8, height);
        }
        ctx.fillStyle = "#222";
        ctx.beginPath();
        ctx.arc((n * 9) % width, height / 2 + Math.sin(n / 10) * height / 4, height / 8, 0, 2 * Math.PI);
        ctx.fill();
        drawStamp(ctx, width, height, Date.now() >>> 0);
      };
      draw();
      setInterval(draw, 1000 / fps);
      const stream = canvas.captureStream(fps);
      const audio = new AudioContext();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      gain.gain.value = 0.05;
      const dest = audio.createMediaStreamDestination();
      tone.connect(gain).connect(dest);
      tone.start();
      dest.stream.getAudioTracks().forEach((t) => stream.addTrack(t));
      return stream;
    },
    // The page's camera becomes the stamped stream (each call gets its own copies of the tracks: a call's end stops
    // them).
    useStampedCamera() {
      const stream = this.stampedStream();
      if (!this.realCamera) this.realCamera = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = async () => new MediaStream(stream.getTracks().map((t) => t.clone()));
      return true;
    },
    // The page's own camera again, and no more reading of pictures.
    stop() {
      if (this.realCamera) navigator.mediaDevices.getUserMedia = this.realCamera;
      this.watching = false;
      this.samples = [];
      return true;
    },
    // Reads the stamp of every picture `video` shows: the delay from capture to display, in ms.
    watch(video) {
      this.watching = true;
      const canvas = document.createElement("canvas");
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      const onFrame = (now, meta) => {
        if (!this.watching) return;
        const w = meta.width, h = meta.height;
        if (w && h) {
          canvas.width = w;
          canvas.height = band(h);
          ctx.drawImage(video, 0, 0, w, h, 0, 0, w, h);
          const stamp = readStamp(ctx.getImageData(0, 0, w, band(h)).data, w, h);
          if (stamp !== null) {
            // Shown at performance.timeOrigin + expectedDisplayTime (the compositor's estimate).
            const shown = Math.round(performance.timeOrigin + meta.expectedDisplayTime);
            const delay = ((shown >>> 0) - stamp) >>> 0;
            if (delay < 10000) this.samples.push(delay);
          }
        }
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
      return true;
    },
    // Median and count of the delays since the last call.
    take() {
      const s = this.samples.splice(0).sort((a, b) => a - b);
      return { count: s.length, median: s.length ? s[Math.floor(s.length / 2)] : null };
    },
  };
  window.mmMeasure = m;
  return true;
})();

// Audio level of a MediaStream (0..1), from an AnalyserNode, reported every 50 ms.

export function watchLevel(stream, onLevel) {
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let running = true;
  const tick = () => {
    if (!running) return;
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
    setTimeout(tick, 50);
  };
  context.resume().then(tick);
  return () => {
    running = false;
    context.close();
  };
}

// The page `GET /` serves: choose or drop a photograph, see its grade. One HTML document (inline
// CSS and JS, no framework) that talks to /v1/predict, or grades inside the browser: the model as
// ONNX (/v1/model.onnx) run by onnxruntime-web (/ort/, served by this server), with the disc crop
// and resize done in the page, so that the photograph never leaves it.
import { locateDisc } from '../data/disc.js';
import { ANALYSIS_SIZE, NOT_FUNDUS_WARNING } from '../data/fundus.js';
import { GRADE_NAMES, REFERABLE_GRADE, VISION_THREATENING_GRADE } from '../data/grades.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';

/**
 * Only inline code and this server's scripts (onnxruntime-web, its WebAssembly), same-origin
 * requests, and data:/blob: pictures (the Grad-CAM, the preview).
 */
export const INDEX_PAGE_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  "script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'",
  'img-src data: blob:',
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Every record of grading in the browser carries it: the server's gradability gate did not run. */
export const BROWSER_NOT_CHECKED_WARNING =
  'graded in this browser: the photograph was not checked for gradability (on the server, an image that is not ' +
  'a gradable colour fundus photograph is refused)';

const DROP_ZONE_STYLE =
  'display: block; border: 2px dashed #777; border-radius: 0.5rem; padding: 1.5rem; text-align: center; background: #fff; cursor: pointer;';

const STYLE = `
  :root { font-family: system-ui, sans-serif; line-height: 1.45; color: #1a1a1a; background: #fafafa; }
  body { max-width: 46rem; margin: 0 auto; padding: 1rem; }
  h1 { margin-bottom: 0.25rem; }
  .notice { border: 3px solid #b00020; background: #fdecee; padding: 0.75rem 1rem; font-weight: 600; }
  #model { color: #555; }
  form { display: grid; gap: 0.75rem; margin: 1rem 0; }
  #drop { ${DROP_ZONE_STYLE} }
  #drop.over { border-color: #0057b8; background: #eaf2fd; }
  button { font: inherit; padding: 0.4rem 1rem; justify-self: start; }
  #status.error { color: #b00020; font-weight: 600; }
  .pictures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
  .pictures img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ccc; }
  #preview { max-height: 14rem; image-rendering: auto; }
  table { border-collapse: collapse; width: 100%; }
  td, th { padding: 0.2rem 0.4rem; text-align: left; }
  th[scope=row] { white-space: nowrap; width: 10rem; }
  td.value { text-align: right; width: 4.5rem; font-variant-numeric: tabular-nums; }
  td.track { width: 100%; }
  .bar { height: 1rem; background: #0057b8; min-width: 1px; }
  #referable { font-size: 1.1rem; }
  #result.uncertain #grade, #result.refused #grade { color: #8a4b00; }
  tr.predicted th, tr.predicted td.value { font-weight: 700; }
  #warnings { color: #8a4b00; }
`;

const SCRIPT = `
  const GRADES = ${JSON.stringify(GRADE_NAMES)};
  const NOTICE = ${JSON.stringify(NOT_FOR_CLINICAL_USE)};
  const $ = (id) => document.getElementById(id);
  const form = $('form'), file = $('file'), drop = $('drop'), statusLine = $('status'), result = $('result');
  let chosen = null;
  let inputSize = null;
  let calibration = null; // the run's thresholds, for the records of grading in this browser

  fetch('/v1/model').then((r) => r.json()).then((m) => {
    inputSize = m.input_size;
    calibration = m.calibration;
    // Grading here needs WebAssembly; without it the page grades on the server, as by default.
    $('where').hidden = !(m.browser_grading && typeof WebAssembly === 'object');
    $('model').textContent = 'Model: ' + m.model + (m.ensemble > 1 ? ' (ensemble of ' + m.ensemble + ')' : '') +
      ', ' + m.input_size + 'x' + m.input_size + ' px input' +
      (m.metrics && m.metrics.test.auc != null ? ', test AUC ' + m.metrics.test.auc.toFixed(3) : '') +
      (m.metrics && m.metrics.test.qwk != null ? ', QWK ' + m.metrics.test.qwk.toFixed(3) : '');
  }).catch(() => {});

  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.className = isError ? 'error' : '';
  }

  function choose(f) {
    chosen = f;
    drop.textContent = f ? 'Chosen: ' + f.name : 'Choose a photograph or drop it here';
    if (f) grade();
  }
  file.addEventListener('change', () => choose(file.files[0] || null));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });
  form.addEventListener('submit', (e) => { e.preventDefault(); grade(); });

  // Only the latest request's answer is shown: an earlier one may arrive after it.
  let latest = 0;
  async function grade() {
    if (!chosen) return say('Choose a photograph first.', true);
    const file = chosen;
    const ticket = ++latest;
    say('Grading ' + file.name + '...');
    result.hidden = true;
    if (document.querySelector('input[name=where]:checked').value === 'browser') {
      let record;
      try {
        record = await gradeHere(file);
      } catch (error) {
        if (ticket === latest) say('Could not grade ' + file.name + ' in this browser: ' + error.message, true);
        return;
      }
      if (ticket !== latest) return;
      show(record, file);
      return say('Graded ' + file.name + ' in this browser.');
    }
    const query = '?crop=' + $('crop').value + ($('cam').checked ? '&cam=1' : '');
    let response;
    try {
      response = await fetch('/v1/predict' + query, {
        method: 'POST',
        headers: { 'Content-Type': file.type.startsWith('image/') ? file.type : 'application/octet-stream' },
        body: file,
      });
    } catch (error) {
      if (ticket === latest) say('Could not reach the server: ' + error.message, true);
      return;
    }
    const body = await response.json().catch(() => ({ message: 'HTTP ' + response.status + ' ' + response.statusText }));
    if (ticket !== latest) return;
    if (response.status === 422 && body.status === 'refused') {
      showRefusal(body, file);
      return say('Not graded: ' + file.name + ' was refused.');
    }
    if (!response.ok) return say('Could not grade ' + file.name + ': ' + body.message, true);
    show(body, file);
    say('Graded ' + file.name + '.');
  }

  // Grading in this browser: the same disc finder as the server's (its source inlined here), the
  // crop and resize on a canvas, the model in onnxruntime-web. Nothing is uploaded.
  const ANALYSIS_SIZE = ${ANALYSIS_SIZE};
  const NOT_FUNDUS_WARNING = ${JSON.stringify(NOT_FUNDUS_WARNING)};
  const NOT_CHECKED_WARNING = ${JSON.stringify(BROWSER_NOT_CHECKED_WARNING)};
  const REFERABLE_GRADE = ${REFERABLE_GRADE}, VISION_THREATENING_GRADE = ${VISION_THREATENING_GRADE};
  ${locateDisc.toString()}

  let runtime = null;
  async function loadRuntime() {
    if (runtime) return runtime;
    await new Promise((loaded, failed) => {
      const script = Object.assign(document.createElement('script'), { src: '/ort/ort.wasm.min.js' });
      script.onload = loaded;
      script.onerror = () => failed(new Error('onnxruntime-web did not load'));
      document.head.append(script);
    });
    ort.env.wasm.wasmPaths = '/ort/';
    ort.env.wasm.numThreads = 1; // threads need a cross-origin isolated page
    const response = await fetch('/v1/model.onnx');
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).message || 'HTTP ' + response.status);
    runtime = await ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()), { executionProviders: ['wasm'] });
    return runtime;
  }

  function context(width, height) {
    const canvas = Object.assign(document.createElement('canvas'), { width, height });
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    return ctx;
  }

  /** The model input as the server makes it: a square around the disc (black outside the photograph), resized. */
  async function modelPixels(file, crop, size) {
    const bitmap = await createImageBitmap(file); // EXIF orientation applied, as the server does
    const W = bitmap.width, H = bitmap.height;
    const warnings = [];
    let square;
    if (crop === 'none') {
      if (W !== H) throw new Error("crop 'none' needs a square image, got " + W + 'x' + H);
      square = { left: 0, top: 0, side: W };
    } else {
      const scale = Math.min(1, ANALYSIS_SIZE / Math.max(W, H));
      const w = Math.max(1, Math.round(W * scale)), h = Math.max(1, Math.round(H * scale));
      const small = context(w, h);
      small.drawImage(bitmap, 0, 0, w, h);
      const disc = locateDisc(small.getImageData(0, 0, w, h).data, w, h, 4);
      if (disc) {
        const sx = W / w, sy = H / h;
        const side = Math.max(1, Math.round(2 * disc.radius * Math.max(sx, sy)));
        square = { left: Math.round(disc.cx * sx - side / 2), top: Math.round(disc.cy * sy - side / 2), side };
      } else {
        warnings.push(NOT_FUNDUS_WARNING);
        const side = Math.min(W, H);
        square = { left: Math.floor((W - side) / 2), top: Math.floor((H - side) / 2), side };
      }
    }
    const out = context(size, size);
    out.fillStyle = '#000';
    out.fillRect(0, 0, size, size);
    const k = size / square.side;
    out.drawImage(bitmap, -square.left * k, -square.top * k, W * k, H * k);
    bitmap.close();
    const rgba = out.getImageData(0, 0, size, size).data;
    const rgb = new Uint8Array(size * size * 3);
    for (let i = 0; i < size * size; i++) rgb.set(rgba.subarray(4 * i, 4 * i + 3), 3 * i);
    return { rgb, warnings };
  }

  /**
   * The server's record from the graph's (calibrated) probabilities: the screening figures as
   * screeningFigures computes them, with the run's thresholds. The gradability gate does not run
   * here: the record says so, and a photograph whose disc was not found is graded with a warning.
   */
  async function gradeHere(file) {
    const model = await loadRuntime();
    const { rgb, warnings } = await modelPixels(file, $('crop').value, inputSize);
    const output = await model.run({ image: new ort.Tensor('uint8', rgb, [1, inputSize, inputSize, 3]) });
    const probabilities = Array.from(output.probabilities.data);
    const grade = probabilities.indexOf(Math.max(...probabilities));
    const atLeast = (cut) => probabilities.slice(cut).reduce((sum, p) => sum + p, 0);
    const p_referable = atLeast(REFERABLE_GRADE), p_vision_threatening = atLeast(VISION_THREATENING_GRADE);
    const uncertainty = -probabilities.reduce((h, p) => (p > 0 ? h + p * Math.log(p) : h), 0) / Math.log(probabilities.length);
    const decided = calibration
      ? { referable: p_referable >= calibration.referable.threshold,
          vision_threatening: p_vision_threatening >= calibration.vision_threatening.threshold }
      : {};
    const status = calibration && uncertainty > calibration.uncertainty.threshold ? 'uncertain' : 'graded';
    return { grade, grade_name: GRADES[grade], probabilities, p_referable, p_vision_threatening, ...decided, uncertainty, status,
      warnings: [NOT_CHECKED_WARNING, ...warnings], disclaimer: NOTICE };
  }

  const percent = (value) => (100 * value).toFixed(1) + '%';

  function showPhoto(file) {
    if ($('preview').src) URL.revokeObjectURL($('preview').src);
    $('preview').src = URL.createObjectURL(file);
    $('preview').alt = 'The photograph you chose: ' + file.name;
  }

  function showRefusal(body, file) {
    showPhoto(file);
    result.className = 'refused';
    $('grade').textContent = 'Not graded: this does not look like a gradable colour fundus photograph';
    $('referable').textContent = 'Reason: ' + body.reason + ' No grade is given for it.';
    $('graded').hidden = true;
    $('warnings').replaceChildren();
    $('cam-figure').hidden = true;
    $('disclaimer').textContent = body.disclaimer;
    result.hidden = false;
  }

  function show(p, file) {
    showPhoto(file);
    result.className = p.status;
    $('graded').hidden = false;
    $('grade').textContent = p.status === 'uncertain'
      ? 'Uncertain: refer for human grading (most probable: grade ' + p.grade + ', ' + p.grade_name + ')'
      : 'Grade ' + p.grade + ': ' + p.grade_name;
    const decision = (flag) =>
      flag === undefined ? '' : flag ? ': at or above the operating point, refer' : ': below the operating point';
    $('referable').textContent = 'P(referable DR, grade 2 or worse) ' + percent(p.p_referable) + decision(p.referable) +
      '. P(vision-threatening, grade 3 or worse) ' + percent(p.p_vision_threatening) + '.';
    const rows = $('probabilities');
    rows.replaceChildren();
    p.probabilities.forEach((value, g) => {
      const row = rows.insertRow();
      if (g === p.grade) row.className = 'predicted';
      const name = document.createElement('th');
      name.scope = 'row';
      name.textContent = g + ' ' + GRADES[g];
      row.append(name);
      const barCell = row.insertCell();
      barCell.className = 'track';
      const bar = document.createElement('div');
      bar.className = 'bar';
      bar.style.width = (100 * value).toFixed(1) + '%';
      bar.setAttribute('aria-hidden', 'true');
      barCell.append(bar);
      const number = row.insertCell();
      number.className = 'value';
      number.textContent = percent(value);
    });
    $('warnings').replaceChildren(...p.warnings.map((w) => Object.assign(document.createElement('li'), { textContent: 'Warning: ' + w })));
    $('cam-figure').hidden = !p.cam;
    if (p.cam) {
      $('cam-image').src = 'data:image/png;base64,' + p.cam;
      $('cam-image').alt = 'Grad-CAM: left, the image the model saw; right, the same with a heat map of the regions that ' +
        'pushed it towards grade ' + p.grade + ' (' + p.grade_name + '), red strongest, blue weakest.';
    }
    $('disclaimer').textContent = p.disclaimer;
    result.hidden = false;
  }
`;

export const INDEX_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>retinagrade: diabetic retinopathy grade of a fundus photograph (research only)</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>retinagrade</h1>
  <p class="notice" role="note"><strong>${NOT_FOR_CLINICAL_USE}</strong> Do not use it to diagnose, screen or treat anyone.</p>
  <p id="model"></p>
</header>
<main>
  <form id="form">
    <label for="file" id="drop">Choose a photograph or drop it here</label>
    <input type="file" id="file" accept="image/png,image/jpeg,image/tiff,image/webp">
    <div>
      <label for="crop">Cropping</label>
      <select id="crop">
        <option value="disc">a square around the retina disc (photographs)</option>
        <option value="none">none: the image is already a square crop</option>
      </select>
    </div>
    <div><input type="checkbox" id="cam" checked> <label for="cam">Show Grad-CAM (where the model looked; on the server only)</label></div>
    <fieldset id="where" hidden>
      <legend>Where to grade</legend>
      <label><input type="radio" name="where" value="server" checked> on the server</label>
      <label><input type="radio" name="where" value="browser"> in this browser: the photograph never leaves this page,
        but it is not checked for gradability</label>
    </fieldset>
    <button type="submit">Grade</button>
  </form>
  <p id="status" role="status" aria-live="polite"></p>
  <section id="result" hidden aria-labelledby="grade">
    <h2 id="grade"></h2>
    <p id="referable"></p>
    <ul id="warnings"></ul>
    <table id="graded">
      <caption>Probability of each grade</caption>
      <tbody id="probabilities"></tbody>
    </table>
    <div class="pictures">
      <img id="preview" alt="">
      <figure id="cam-figure" hidden>
        <img id="cam-image" alt="">
        <figcaption>Left: the model's input. Right: Grad-CAM of the predicted grade (red: most evidence).</figcaption>
      </figure>
    </div>
    <p class="notice" id="disclaimer"></p>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

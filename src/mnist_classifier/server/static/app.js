"use strict";

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
const prediction = document.getElementById("prediction");
const confidence = document.getElementById("confidence");
const reading = document.getElementById("reading");
const errorBox = document.getElementById("error");
const hint = document.getElementById("hint");
const PAPER = "#fdfcf7";
const INK = "#1c1917";

let drawing = false;
let last = null;
let busy = false;
let again = false;
let classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

function buildBars() {
  bars.replaceChildren(
    ...classes.map((name) => {
      const row = document.createElement("li");
      row.className = "bar";
      row.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value">–</span>';
      row.querySelector(".label").textContent = name;
      return row;
    }),
  );
}

function clearCanvas() {
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  hint.classList.remove("hidden");
  showEmpty("no digit yet");
}

function showEmpty(text) {
  prediction.textContent = "?";
  prediction.dataset.state = "empty";
  delete prediction.dataset.verdict;
  confidence.textContent = text;
  reading.textContent = "";
  seen.clearRect(0, 0, 28, 28);
  bars.querySelectorAll(".bar").forEach((row) => {
    row.classList.remove("top");
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".value").textContent = "–";
  });
}

// The big answer, the line beside it, and the model's reading (shown greyed) when the verdict is cautious: the
// reading stands whatever the verdict.
function answer(result) {
  const read = `reads like ${result.digit}?, ${(result.confidence * 100).toFixed(0)}%`;
  if (result.verdict === "not_a_digit") return ["×", "not a digit", read];
  if (result.verdict === "uncertain") {
    const second = result.probabilities.map((p, i) => [p, classes[i]]).sort((a, b) => b[0] - a[0])[1][1];
    return [`${result.digit}?`, `not sure (${result.digit} or ${second}?)`, read];
  }
  return [result.digit, `${(result.confidence * 100).toFixed(1)}% sure`, ""];
}

function show(result) {
  if (result.digit === null) {
    showEmpty("no digit yet"); // a blank canvas: not a digit, with nothing read
    return;
  }
  const [big, line, read] = answer(result);
  prediction.textContent = big;
  prediction.dataset.state = "ready";
  prediction.dataset.verdict = result.verdict;
  confidence.textContent = line;
  reading.textContent = read;
  const best = result.probabilities.indexOf(Math.max(...result.probabilities));
  bars.querySelectorAll(".bar").forEach((row, i) => {
    const p = result.probabilities[i];
    row.classList.toggle("top", i === best);
    row.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
    row.querySelector(".value").textContent = `${(p * 100).toFixed(1)}%`;
  });
  if (result.input) {
    const image = new Image();
    image.onload = () => seen.drawImage(image, 0, 0);
    image.src = result.input;
  }
}

async function send(blob) {
  const form = new FormData();
  form.append("file", blob, "digit.png");
  const response = await fetch("/predict?include_input=true", { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(typeof body.detail === "string" ? body.detail : `error ${response.status}`);
  }
  return body;
}

async function predict(blob) {
  errorBox.textContent = "";
  try {
    show(await send(blob));
  } catch (error) {
    showEmpty("could not read it");
    errorBox.textContent = error.message;
  }
}

function predictCanvas() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  canvas.toBlob(async (blob) => {
    await predict(blob);
    busy = false;
    if (again) {
      again = false;
      predictCanvas();
    }
  }, "image/png");
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return { x: ((event.clientX - box.left) * canvas.width) / box.width, y: ((event.clientY - box.top) * canvas.height) / box.height };
}

function stroke(from, to) {
  ctx.strokeStyle = INK;
  ctx.lineWidth = canvas.width / 14;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  drawing = true;
  last = point(event);
  stroke(last, last);
  hint.classList.add("hidden");
});

canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const next = point(event);
  stroke(last, next);
  last = next;
  predictCanvas();
});

function stop() {
  if (!drawing) return;
  drawing = false;
  predictCanvas();
}
canvas.addEventListener("pointerup", stop);
canvas.addEventListener("pointercancel", stop);

document.getElementById("clear").addEventListener("click", clearCanvas);

document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const url = URL.createObjectURL(file);
  const image = new Image();
  image.onload = () => {
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const scale = Math.min(canvas.width / image.width, canvas.height / image.height);
    const w = image.width * scale;
    const h = image.height * scale;
    ctx.drawImage(image, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    hint.classList.add("hidden");
    URL.revokeObjectURL(url);
  };
  image.src = url;
  predict(file);
});

async function loadModelInfo() {
  try {
    const info = await (await fetch("/model")).json();
    classes = info.classes;
    buildBars();
    const accuracy = info.test_accuracy == null ? "" : ` · ${(info.test_accuracy * 100).toFixed(2)}% on the test set`;
    document.getElementById("model-info").textContent = `model ${info.name} (${info.architecture}, ${info.dataset ?? "?"})${accuracy}`;
  } catch {
    document.getElementById("model-info").textContent = "model information unavailable";
  }
}

buildBars();
clearCanvas();
loadModelInfo();

"""The backprop explorer: the page embeds exactly what backward() computes, in the engine's order, and a real
browser (headless Chromium driven by Playwright) shows it step by step."""

import json
import os
import re
import shutil
import time

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, viz
from tinygrad_cnn.viz.explore import substituted_vjp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def fan_out():
    """Example 01's expression: x feeds a and b, a feeds three consumers."""
    x = tg.Tensor(np.float64(0.8), requires_grad=True)
    y = tg.Tensor(np.float64(-1.3), requires_grad=True)
    a = x * y
    b = a.tanh() + x
    f = a * b + a.exp() * 0.5
    return f, {"x": x, "y": y, "a": a, "b": b, "f": f}


def small_cnn_loss():
    nn.set_random_seed(0)
    model = nn.Sequential([nn.Input((8, 8, 1)), nn.Conv2D(2, 3, padding="same", activation="relu"),
                           nn.MaxPooling2D(2), nn.Flatten(), nn.Dense(3)])
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    logits, names = viz.layer_names(model, x)
    loss = F.cross_entropy(logits, np.array([0, 2]))
    names["loss"] = loss
    return loss, names, model


def embedded(page: str) -> dict:
    """The data the page's script reads, parsed from the page itself."""
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.S)
    return json.loads(match[1])


def index(d: dict, name: str) -> int:
    return next(i for i, n in enumerate(d["nodes"]) if n["name"] == name)


def values(gradient: dict) -> np.ndarray:
    return np.array([float(v) for v in gradient["values"]]).reshape(gradient["shape"])


def test_page_embeds_backward_gradients_in_engine_order(tmp_path):
    f, names = fan_out()
    explorer = viz.explore(f, names, path=tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text()
    assert page == explorer.html
    d = embedded(page)
    steps = tg.trace(f, names=names, file=False)
    by_index = {i: n["name"] for i, n in enumerate(d["nodes"])}
    assert [by_index[s["node"]] for s in d["steps"]] == [s.name for s in steps]  # the engine's order
    position = {s["node"]: k for k, s in enumerate(d["steps"])}
    for i, node in enumerate(d["nodes"]):  # reverse topological: a node comes after every consumer
        for p in node["inputs"]:
            if p in position:
                assert position[p] > position[i]
    consumers = {n["name"]: n["consumers"] for n in d["nodes"]}
    assert consumers["x"] == 2 and consumers["a"] == 3 and consumers["y"] == 1  # fan-out marked
    assert names["x"].grad is None  # nothing accumulated yet
    f.backward()
    grads = {by_index[s["node"]]: values(s["gradient"]) for s in d["steps"]}
    assert grads["x"] == names["x"].grad.item() and grads["y"] == names["y"].grad.item()
    av, bv, xv = names["a"].item(), names["b"].item(), names["x"].item()
    df_da = bv + 0.5 * np.exp(av) + av * (1 - np.tanh(av) ** 2)  # by hand: three paths into a
    np.testing.assert_allclose(grads["a"], df_da, rtol=1e-13)
    a_step = next(s for s in d["steps"] if by_index[s["node"]] == "a")
    assert len(a_step["contributions"]) == 3
    assert sum(float(c["value"]) for c in a_step["contributions"]) == pytest.approx(df_da, rel=1e-5)
    assert grads["x"] == pytest.approx(df_da * names["y"].item() + av, rel=1e-13)
    assert xv == 0.8
    # self-contained: no external resource (the only URL is the SVG namespace, never fetched)
    assert not re.search(r"<link|\bsrc=|@import|url\((?!#)", page)
    assert set(re.findall(r"https?://[^\s\"'`]+", page)) == {"http://www.w3.org/2000/svg"}


def test_vjp_rule_with_numbers_for_scalars():
    x = tg.Tensor(3.0, requires_grad=True)
    y = tg.Tensor(-2.0, requires_grad=True)
    z = x * y
    step = next(s for s in viz.explore(z, {"x": x, "y": y, "z": z}).data["steps"] if s["node"] == 2)
    assert step["rule"] == "y = a * b. vjp: (g * b, g * a)."
    assert step["numbers"] == "(1 * (-2), 1 * 3)"
    assert substituted_vjp(step["rule"], tg.Tensor(np.ones(3), requires_grad=True) * 2.0, np.ones(3)) is None


def test_cnn_loss_collapses_to_layers():
    loss, names, model = small_cnn_loss()
    explorer = viz.explore(loss, names)
    d = explorer.data
    assert d["collapsed"] and explorer.path is None
    group_name = {i: d["nodes"][n["group"]]["name"] for i, n in enumerate(d["nodes"])}
    for i, n in enumerate(d["nodes"]):
        if "/" in n["name"]:  # a layer's weights stay inside the layer
            assert group_name[i] == n["name"].split("/")[0]
    layers = d["views"]["layers"]["boxes"]
    boxes = {d["nodes"][int(k[1:])]["name"] for k in layers}
    assert boxes == {"input", "loss"} | {layer.name for layer in model.layers}
    dense = model.layers[-1].name
    opened = d["views"][f"g{index(d, dense)}"]["boxes"]
    assert {d["nodes"][int(k[1:])]["name"] for k in opened if k[0] == "n"} >= {f"{dense}/kernel", f"{dense}/bias"}
    kernel, matmul = index(d, f"{dense}/kernel"), d["nodes"][index(d, dense)]["inputs"][0]
    assert opened[f"n{kernel}"][0] == opened[f"n{matmul}"][0] - 1  # a weight sits just before its use
    dag = {"x": [], "h": ["x"], "w": [], "y": ["h", "w"]}  # w joins late: just before y, not at column 0
    assert viz.layered_layout(list(dag), dag)[0]["w"][0] == 1
    loss.backward()
    for s in d["steps"]:
        name = d["nodes"][s["node"]]["name"]
        if "/" in name:
            np.testing.assert_array_equal(values(s["gradient"]), names[name].grad.data)
    assert len([w for w in model.parameters() if w.grad is not None]) == 4
    frame = explorer._repr_html_()
    assert frame.startswith("<iframe srcdoc=\"") and "&lt;script" in frame and "<script" not in frame


def test_explore_bad_inputs(tmp_path):
    f, names = fan_out()
    with pytest.raises(TypeError, match="explore: output must be a Tensor"):
        viz.explore(1.0)
    with pytest.raises(TypeError, match="explore: names must be a dict"):
        viz.explore(f, ["x"])
    with pytest.raises(TypeError, match="collapse"):
        viz.explore(f, collapse="yes")
    with pytest.raises(ValueError, match="does not require a gradient"):
        viz.explore(tg.Tensor(1.0) * 2.0)
    with pytest.raises(ValueError, match="named 'p'"):
        viz.explore(f, {names["x"]: "p", names["y"]: "p"})
    with pytest.raises(TypeError, match="Sequential"):
        viz.layer_names(object(), np.zeros((1, 8, 8, 1)))
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium); the browser test needs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs the playwright package")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


SHOWN_JS = """() => ({
    label: document.querySelector("#step-label").textContent,
    node: document.querySelector("#current-node").textContent,
    current: [...document.querySelectorAll(".box.current")].map(b => b.getAttribute("data-key")),
    grad: document.querySelector("#current-grad").textContent,
    contributions: document.querySelectorAll("#contributions li").length,
    active: document.querySelectorAll(".edge.active").length,
})"""


# every drawn edge, sampled along its length: the points that fall inside a box (shrunk by 2 px at each side, so
# an edge's own ends on the border do not count), with the box's key
EDGES_INSIDE_BOXES_JS = """() => {
    const rects = [...document.querySelectorAll(".box")].map(b => [b.getAttribute("data-key"),
                                                                  b.querySelector("rect").getBoundingClientRect()]);
    const hits = [];
    for (const path of document.querySelectorAll(".edge")) {
        const m = path.getScreenCTM(), n = path.getTotalLength();
        for (let t = 0; t <= n; t += 2) {
            const q = path.getPointAtLength(t), x = m.a * q.x + m.e, y = m.d * q.y + m.f;
            for (const [key, r] of rects)
                if (x > r.left + 2 && x < r.right - 2 && y > r.top + 2 && y < r.bottom - 2) hits.push([key, x, y]);
        }
    }
    return {edges: document.querySelectorAll(".edge").length, hits: hits};
}"""


def open_page(browser, explorer, tmp_path, name):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(explorer.save(tmp_path / name).as_uri())
    return page, errors


def test_browser_steps_the_backward_pass(browser, tmp_path):
    f, names = fan_out()
    explorer = viz.explore(f, names)
    page, errors = open_page(browser, explorer, tmp_path, "fan_out.html")
    drawn = page.evaluate(EDGES_INSIDE_BOXES_JS)  # x -> b, a -> v2 and v4 -> f skip columns: routed between boxes
    assert drawn["edges"] == len(explorer.data["views"]["all"]["edges"]) == 12 and drawn["hits"] == []
    assert sum(len(w) for w in explorer.data["views"]["all"]["edges"].values()) == 5  # waypoints: 2 + 2 + 1
    steps = explorer.data["steps"]
    assert len(steps) == 9  # every node but the constant 0.5
    f.backward()
    assert page.inner_text("#step-label") == f"step 0 / {len(steps)}"
    for k, s in enumerate(steps, start=1):
        page.keyboard.press("ArrowRight")
        shows = page.evaluate(SHOWN_JS)  # what the DOM shows, read in one round trip
        node = explorer.data["nodes"][s["node"]]
        assert shows["label"] == f"step {k} / {len(steps)}"
        assert shows["node"] == node["name"]
        assert shows["current"] == [f"n{s['node']}"]  # the one highlighted box is the step's node
        shown = float(shows["grad"])
        assert shown == pytest.approx(values(s["gradient"]).item(), rel=1e-5)
        if node["name"] in ("x", "y"):
            assert shown == pytest.approx(names[node["name"]].grad.item(), rel=1e-5)
        if node["name"] == "a":  # three consumers: three contributions, three labelled edges
            assert shows["contributions"] == 3 and shows["active"] == 3
    page.keyboard.press("ArrowRight")  # past the end stays at the end
    assert page.inner_text("#step-label") == f"step {len(steps)} / {len(steps)}"
    page.keyboard.press("Home")
    assert page.inner_text("#current-node") == "forward pass" and not page.query_selector_all(".box.current")
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    assert page.inner_text("#step-label") == f"step {len(steps) - 1} / {len(steps)}"
    assert errors == []
    # negative control: x -> b redrawn through the rows of a and v3 is caught, in those two boxes
    page.evaluate("""() => { D.views.all.edges["n0>n4"] = [[1, -0.5], [2, -1.0]]; render(); }""")
    assert {key for key, *_ in page.evaluate(EDGES_INSIDE_BOXES_JS)["hits"]} == {"n2", "n6"}


def test_browser_runs_the_notebook_iframe(browser):
    """What Jupyter shows (``_repr_html_``: the page in an iframe's srcdoc) runs its script."""
    f, names = fan_out()
    page = browser.new_page()
    page.set_content("<h1>a notebook cell</h1>" + viz.explore(f, names)._repr_html_())
    frame = page.frames[1]
    frame.dispatch_event("#next", "click")
    assert frame.inner_text("#step-label") == "step 1 / 9" and frame.inner_text("#current-node") == "f"


def test_browser_opens_a_layer(browser, tmp_path):
    loss, names, model = small_cnn_loss()
    explorer = viz.explore(loss, names)
    page, errors = open_page(browser, explorer, tmp_path, "cnn.html")
    name = model.layers[-1].name
    dense = index(explorer.data, name)
    assert len(page.query_selector_all(".box")) == len(explorer.data["views"]["layers"]["boxes"])
    page.dispatch_event(f'[data-key="g{dense}"]', "click")
    assert len(page.query_selector_all(".box")) == len(explorer.data["views"][f"g{dense}"]["boxes"])
    kernel = index(explorer.data, f"{name}/kernel")
    page.dispatch_event(f'[data-key="n{kernel}"]', "click")  # jumps to the kernel's step
    assert page.inner_text("#current-node") == f"{name}/kernel"
    assert page.query_selector(".box.current").get_attribute("data-key") == f"n{kernel}"
    page.dispatch_event("#collapse", "click")
    assert len(page.query_selector_all(".box")) == len(explorer.data["views"]["layers"]["boxes"])
    assert errors == []


def chain(n: int):
    """About ``n`` nodes: h <- tanh(1.001 h) + x repeated (four nodes each, x fanning out to every step)."""
    x = tg.Tensor(np.float64(0.5), requires_grad=True)
    h = x
    for _ in range((n - 1) // 4):
        h = (h * 1.001).tanh() + x
    return h


@pytest.mark.skipif(os.environ.get("TINYGRAD_LONG_TESTS") != "1", reason="long profile: TINYGRAD_LONG_TESTS=1")
@pytest.mark.parametrize("n", [50, 500, 2000])
def test_browser_step_time(browser, tmp_path, n):
    """How large a graph stays responsive: building the page, loading it, and one step in the page (a keydown
    handled, the DOM updated and laid out; printed, the bound is loose)."""
    start = time.perf_counter()
    explorer = viz.explore(chain(n))
    build = time.perf_counter() - start
    start = time.perf_counter()
    page, errors = open_page(browser, explorer, tmp_path, f"chain{n}.html")
    load = time.perf_counter() - start
    per_step = page.evaluate("""() => {
        const t = performance.now();
        for (let k = 0; k < 20; k++) {
            document.dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowRight"}));
            document.body.getBoundingClientRect();  // force the layout the step caused
        }
        return (performance.now() - t) / 20;
    }""")
    jump, redraw = page.evaluate("""() => {
        let t = performance.now();
        document.dispatchEvent(new KeyboardEvent("keydown", {key: "End"}));  // every gradient, x's fan-out
        document.body.getBoundingClientRect();
        const jump = performance.now() - t;
        t = performance.now();
        render();
        document.body.getBoundingClientRect();
        return [jump, performance.now() - t];
    }""")
    print(f"\n{len(explorer.data['nodes'])} nodes: explore() {build:.2f} s, page load {load:.2f} s, "
          f"{per_step:.2f} ms per step, {jump:.0f} ms to jump to the end, {redraw:.0f} ms to redraw, "
          f"page {len(explorer.html) // 1024} KB")
    assert per_step < 200 and errors == []

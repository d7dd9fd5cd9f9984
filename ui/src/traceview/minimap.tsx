// The whole trace in miniature (one canvas line per span, in row order) with the part the
// axis shows as a window: drag across it to zoom there, drag the window to pan, double-click
// to see everything again.
import { useEffect, useRef, useState } from "preact/hooks";
import { ERROR_COLOR, serviceColor } from "../colors";
import type { TraceTree } from "../trace/tree";
import { useClientSize } from "./size";
import { type TimeView, isWholeView, panView, viewFromFractions } from "./viewport";

const HEIGHT = 40;

type Drag = { mode: "select"; from: number; to: number } | { mode: "pan"; from: number; base: TimeView };

export function Minimap({
  tree,
  view,
  bounds,
  onView,
}: {
  tree: TraceTree;
  view: TimeView;
  bounds: TimeView;
  onView: (view: TimeView) => void;
}) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const boxRef = useRef<HTMLDivElement>(null);
  const [drag, setDrag] = useState<Drag | null>(null);

  const { width } = useClientSize(boxRef);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas || width === 0) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, HEIGHT);
    const nodes = tree.nodes;
    const total = Math.max(bounds.endUs - bounds.startUs, 1);
    const rowH = Math.max(HEIGHT / Math.max(nodes.length, 1), 0.5);
    // One fillStyle change per service run rather than per span keeps 50,000 spans cheap.
    let style = "";
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const next = n.error ? ERROR_COLOR : serviceColor(n.span.service);
      if (next !== style) {
        style = next;
        ctx.fillStyle = style;
      }
      const x = ((n.startUs - bounds.startUs) / total) * width;
      const w = Math.max(((n.endUs - n.startUs) / total) * width, 0.5);
      ctx.fillRect(x, (i / nodes.length) * HEIGHT, w, rowH);
    }
  }, [tree, bounds, width]);

  function fraction(event: PointerEvent): number {
    const rect = boxRef.current!.getBoundingClientRect();
    return Math.min(1, Math.max(0, (event.clientX - rect.left) / Math.max(rect.width, 1)));
  }

  const total = Math.max(bounds.endUs - bounds.startUs, 1);
  const shown = drag?.mode === "select" ? viewFromFractions(drag.from, drag.to, bounds) : view;
  const left = ((shown.startUs - bounds.startUs) / total) * 100;
  const right = 100 - ((shown.endUs - bounds.startUs) / total) * 100;

  return (
    <div
      ref={boxRef}
      class="tv-minimap"
      data-testid="minimap"
      title="Drag to zoom, drag the window to pan, double-click to reset"
      onPointerDown={(e) => {
        if (e.button !== 0) return;
        const f = fraction(e);
        (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
        const inside = !isWholeView(view, bounds) && f * total + bounds.startUs >= view.startUs && f * total + bounds.startUs <= view.endUs;
        setDrag(inside ? { mode: "pan", from: f, base: view } : { mode: "select", from: f, to: f });
      }}
      onPointerMove={(e) => {
        if (!drag) return;
        const f = fraction(e);
        if (drag.mode === "select") setDrag({ ...drag, to: f });
        else onView(panView(drag.base, f - drag.from, bounds));
      }}
      onPointerUp={(e) => {
        if (!drag) return;
        const f = fraction(e);
        // A click without a drag is not a zoom to nothing.
        if (drag.mode === "select" && Math.abs(f - drag.from) * (boxRef.current?.clientWidth ?? 0) >= 3) {
          onView(viewFromFractions(drag.from, f, bounds));
        }
        setDrag(null);
      }}
      onDblClick={() => onView(bounds)}
    >
      <canvas ref={canvasRef} style={{ width: "100%", height: `${HEIGHT}px` }} />
      <div class="tv-mm-shade" style={{ left: 0, width: `${left}%` }} />
      <div class="tv-mm-shade" style={{ right: 0, width: `${right}%` }} />
      <div class="tv-mm-window" data-testid="minimap-window" style={{ left: `${left}%`, right: `${right}%` }} />
    </div>
  );
}

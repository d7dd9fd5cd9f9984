// The log search form: every GET /api/logs parameter, filled from the page URL and written
// back to it on submit (the URL is the state).
import { useEffect, useState } from "preact/hooks";
import { apiGet } from "../api";
import { fromInputValue, toInputValue } from "../format";
import { useApi } from "../hooks";
import { usePrefs } from "../prefs";
import { PICKER_WINDOW_MS, serviceNames } from "../services";
import { attributeFilters, DEFAULT_LOOKBACK, LOOKBACKS, parseTimeParam } from "../search/params";
import type { AttributeValue } from "../types";
import { formToQuery, type LogForm } from "./params";
import { SEVERITIES } from "./severity";

const WEEK_MS = PICKER_WINDOW_MS;

function fromQuery(query: URLSearchParams): LogForm {
  const absolute = query.has("start") || query.has("end");
  return {
    service: query.get("service") ?? "",
    severity: query.get("severity") ?? "",
    q: query.get("q") ?? "",
    traceId: query.get("traceId") ?? "",
    spanId: query.get("spanId") ?? "",
    limit: query.get("limit") ?? "100",
    lookback: absolute ? "" : (query.get("lookback") ?? DEFAULT_LOOKBACK),
    start: parseTimeParam(query.get("start")),
    end: parseTimeParam(query.get("end")),
    attributes: attributeFilters(query),
  };
}

export function LogSearchForm({ query, onSearch }: { query: URLSearchParams; onSearch: (next: URLSearchParams) => void }) {
  const { timeZone } = usePrefs();
  const key = query.toString();
  const [form, setForm] = useState<LogForm>(() => fromQuery(query));
  // Back/forward and histogram drags change the URL: the form follows it.
  useEffect(() => setForm(fromQuery(query)), [key]);
  const services = useApi((signal) => serviceNames(signal), []);
  const keys = useApi((signal) => apiGet<{ keys: string[] }>("/api/attributes", { signal: "logs", start: Date.now() - WEEK_MS }, signal), []);

  const patch = (p: Partial<LogForm>) => setForm({ ...form, ...p });
  const setAttr = (i: number, k: string, v: string) =>
    patch({ attributes: form.attributes.map((pair, j) => (j === i ? ([k, v] as const) : pair)) });

  function submit(event: Event) {
    event.preventDefault();
    onSearch(formToQuery(form));
  }

  const names = services.state === "ok" ? [...services.data] : [];
  if (form.service && !names.includes(form.service)) names.unshift(form.service);

  return (
    <form class="search-form log-form" onSubmit={submit} aria-label="Log search">
      <label>
        Service
        <select name="service" value={form.service} onChange={(e) => patch({ service: e.currentTarget.value })}>
          <option value="">All services</option>
          {names.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Minimum severity
        <select name="severity" value={form.severity.toUpperCase()} onChange={(e) => patch({ severity: e.currentTarget.value })}>
          <option value="">Any</option>
          {SEVERITIES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Text in body
        <input name="q" value={form.q} placeholder="case-insensitive substring" onInput={(e) => patch({ q: e.currentTarget.value })} />
      </label>
      <label>
        Trace ID
        <input name="traceId" class="mono" value={form.traceId} onInput={(e) => patch({ traceId: e.currentTarget.value })} />
      </label>
      <label>
        Span ID
        <input name="spanId" class="mono" value={form.spanId} onInput={(e) => patch({ spanId: e.currentTarget.value })} />
      </label>
      <fieldset class="attr-filters">
        <legend>Attributes</legend>
        <datalist id="log-attr-keys">{keys.state === "ok" && keys.data.keys.map((k) => <option key={k} value={k} />)}</datalist>
        {form.attributes.map(([k, v], i) => (
          <AttributeRow
            key={i}
            index={i}
            name={k}
            value={v}
            onChange={(nk, nv) => setAttr(i, nk, nv)}
            onRemove={() => patch({ attributes: form.attributes.filter((_, j) => j !== i) })}
          />
        ))}
        <button type="button" class="link" onClick={() => patch({ attributes: [...form.attributes, ["", ""]] })}>
          + Add attribute filter
        </button>
      </fieldset>
      <label>
        Time
        <select name="lookback" value={form.lookback} onChange={(e) => patch({ lookback: e.currentTarget.value })}>
          {LOOKBACKS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
          <option value="">Absolute range</option>
        </select>
      </label>
      {form.lookback === "" && (
        <>
          <label>
            From
            <input
              name="start"
              type="datetime-local"
              step="0.001"
              value={form.start === null ? "" : toInputValue(form.start, timeZone)}
              onChange={(e) => patch({ start: fromInputValue(e.currentTarget.value, timeZone) })}
            />
          </label>
          <label>
            To
            <input
              name="end"
              type="datetime-local"
              step="0.001"
              value={form.end === null ? "" : toInputValue(form.end, timeZone)}
              onChange={(e) => patch({ end: fromInputValue(e.currentTarget.value, timeZone) })}
            />
          </label>
        </>
      )}
      <label>
        Limit
        <input name="limit" type="number" min={1} max={1000} value={form.limit} onInput={(e) => patch({ limit: e.currentTarget.value })} />
      </label>
      <button type="submit" class="primary">
        Find logs
      </button>
    </form>
  );
}

function AttributeRow(props: {
  index: number;
  name: string;
  value: string;
  onChange: (name: string, value: string) => void;
  onRemove: () => void;
}) {
  const { index, name, value, onChange, onRemove } = props;
  const trimmed = name.trim();
  const values = useApi(
    (signal) =>
      trimmed
        ? apiGet<{ values: AttributeValue[] }>(`/api/attributes/${encodeURIComponent(trimmed)}/values`, { signal: "logs", start: Date.now() - WEEK_MS }, signal)
        : Promise.resolve({ values: [] as AttributeValue[] }),
    [trimmed],
  );
  const listId = `log-attr-values-${index}`;
  return (
    <div class="attr-row">
      <input aria-label={`Attribute ${index + 1} key`} list="log-attr-keys" placeholder="key" value={name} onInput={(e) => onChange(e.currentTarget.value, value)} />
      <input aria-label={`Attribute ${index + 1} value`} list={listId} placeholder="value" value={value} onInput={(e) => onChange(name, e.currentTarget.value)} />
      <datalist id={listId}>
        {values.state === "ok" &&
          values.data.values.map((v) => {
            const text = typeof v === "string" ? v : JSON.stringify(v);
            return <option key={text} value={text} />;
          })}
      </datalist>
      <button type="button" class="link" aria-label={`Remove attribute filter ${index + 1}`} onClick={onRemove}>
        ×
      </button>
    </div>
  );
}

// The trace search form: every GET /api/traces parameter. It edits a draft of the URL's
// state and writes the URL on submit; a URL change (back/forward, a link) resets the draft.
import { useEffect, useState } from "preact/hooks";
import { fromInputValue, toInputValue } from "../format";
import { usePrefs } from "../prefs";
import { Combobox } from "./combobox";
import type { AttrRow, SearchForm } from "./params";
import { CUSTOM_RANGE, formFromQuery, formWindow, LOOKBACKS, lookbackMs, searchKey } from "./params";
import { serviceNames } from "../services";
import { attributeKeys, attributeValues, operationNames, useLatest, useSuggestions } from "./suggest";
import type { Window } from "./suggest";

export interface SearchFormProps {
  readonly query: URLSearchParams;
  /** The URL parameter the API's last 400 named, marked invalid until the next search. */
  readonly invalid: string | null;
  readonly onSearch: (form: SearchForm) => void;
}

export function SearchFormView({ query, invalid, onSearch }: SearchFormProps) {
  const key = searchKey(query);
  const [draft, setDraft] = useState<SearchForm>(() => formFromQuery(query));
  useEffect(() => setDraft(formFromQuery(query)), [key]);
  const { timeZone } = usePrefs();
  const services = useLatest(() => serviceNames(undefined, "spanCount"), true, []);
  const operations = useLatest(() => operationNames(draft.service), draft.service !== "", [draft.service]);

  const set = (patch: Partial<SearchForm>) => setDraft((d) => ({ ...d, ...patch }));
  const text = (field: keyof SearchForm) => (e: Event) => set({ [field]: (e.target as HTMLInputElement).value });
  const bad = (param: string) => (invalid === param ? true : undefined);

  const serviceList = [...services.items];
  if (draft.service && !serviceList.includes(draft.service)) serviceList.unshift(draft.service);
  const operationList = operations.items.filter((o) => o.toLowerCase().includes(draft.operation.toLowerCase()));

  function setLookback(value: string) {
    if (value === CUSTOM_RANGE && draft.start === null) {
      const now = Date.now();
      set({ lookback: value, start: now - (lookbackMs(draft.lookback) ?? 3_600_000), end: now });
    } else set({ lookback: value });
  }

  function setRow(index: number, row: AttrRow | null) {
    const attrs = draft.attrs.slice();
    if (row) attrs[index] = row;
    else attrs.splice(index, 1);
    set({ attrs });
  }

  return (
    <form
      class="search-form"
      aria-label="Trace search"
      onSubmit={(e) => {
        e.preventDefault();
        onSearch(draft);
      }}
    >
      <label>
        Service
        <select
          name="service"
          value={draft.service}
          aria-invalid={bad("service")}
          // A new service has other operations: the old one would rarely match.
          onChange={(e) => set({ service: (e.target as HTMLSelectElement).value, operation: "" })}
        >
          <option value="">All services</option>
          {serviceList.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      {services.error !== null && <div class="muted">Services could not be listed: {message(services.error)}</div>}
      <div class="field">
        <span>Operation</span>
        <Combobox
          label="Operation"
          name="operation"
          value={draft.operation}
          options={operationList}
          placeholder={draft.service ? "any operation" : "part of the span name"}
          invalid={bad("operation")}
          note={operations.error === null ? null : `Operations could not be listed: ${message(operations.error)}`}
          onChange={(operation) => set({ operation })}
        />
      </div>
      <label>
        Status
        <select name="status" value={draft.status} aria-invalid={bad("status")} onChange={text("status")}>
          <option value="">Any</option>
          <option value="error">Error</option>
          <option value="ok">OK</option>
          <option value="unset">Unset</option>
        </select>
      </label>
      <DurationPair legend="Span duration" what="span" min="minDuration" max="maxDuration" draft={draft} set={set} invalid={invalid} />
      <DurationPair legend="Trace duration" what="trace" min="minTraceDuration" max="maxTraceDuration" draft={draft} set={set} invalid={invalid} />
      <fieldset class="attrs">
        <legend>Attributes</legend>
        {draft.attrs.map((row, i) => (
          <AttributeRow key={i} index={i} row={row} searchWindow={() => formWindow(draft, Date.now())} invalid={invalid !== null && invalid === `attr.${row.key}`} onChange={(r) => setRow(i, r)} />
        ))}
        <button type="button" class="link" onClick={() => set({ attrs: [...draft.attrs, { key: "", value: "" }] })}>
          + Add attribute filter
        </button>
      </fieldset>
      <label>
        Time range
        <select name="lookback" value={draft.lookback} onChange={(e) => setLookback((e.target as HTMLSelectElement).value)}>
          {LOOKBACKS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
          {!LOOKBACKS.some(([v]) => v === draft.lookback) && draft.lookback !== CUSTOM_RANGE && (
            <option value={draft.lookback}>Last {draft.lookback}</option>
          )}
          <option value={CUSTOM_RANGE}>Absolute range…</option>
        </select>
      </label>
      {draft.lookback === CUSTOM_RANGE && (
        <fieldset>
          <legend>Range ({timeZone === "utc" ? "UTC" : "local time"})</legend>
          {(["start", "end"] as const).map((field) => (
            <label key={field}>
              {field === "start" ? "From" : "To"}
              <input
                type="datetime-local"
                name={field}
                step="0.001"
                aria-invalid={bad(field)}
                value={draft[field] === null ? "" : toInputValue(draft[field] ?? 0, timeZone)}
                onChange={(e) => set({ [field]: fromInputValue((e.target as HTMLInputElement).value, timeZone) })}
              />
            </label>
          ))}
        </fieldset>
      )}
      <label>
        Limit
        <input name="limit" type="number" min={1} max={1000} placeholder="100" value={draft.limit} aria-invalid={bad("limit")} onInput={text("limit")} />
      </label>
      <button type="submit" class="primary">
        Find traces
      </button>
    </form>
  );
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type DurationField = "minDuration" | "maxDuration" | "minTraceDuration" | "maxTraceDuration";

function DurationPair(props: {
  legend: string;
  what: string;
  min: DurationField;
  max: DurationField;
  draft: SearchForm;
  set: (patch: Partial<SearchForm>) => void;
  invalid: string | null;
}) {
  const input = (field: DurationField, bound: string, hint: string) => (
    <input
      name={field}
      aria-label={`${bound} ${props.what} duration`}
      value={props.draft[field]}
      placeholder={hint}
      aria-invalid={props.invalid === field || undefined}
      onInput={(e) => props.set({ [field]: (e.target as HTMLInputElement).value })}
    />
  );
  return (
    <fieldset>
      <legend>{props.legend}</legend>
      <span class="pair">
        {input(props.min, "Minimum", "min, e.g. 100ms")}
        {input(props.max, "Maximum", "max, e.g. 2s")}
      </span>
    </fieldset>
  );
}

function AttributeRow({
  index,
  row,
  searchWindow,
  invalid,
  onChange,
}: {
  index: number;
  row: AttrRow;
  /** The window the search would read, asked when suggestions are (relative ones move on). */
  searchWindow: () => Window;
  invalid: boolean;
  onChange: (row: AttrRow | null) => void;
}) {
  const [focus, setFocus] = useState<"key" | "value" | null>(null);
  const keys = useSuggestions((prefix) => attributeKeys(prefix, searchWindow()), row.key, focus === "key", []);
  const values = useSuggestions(
    (prefix) => (row.key ? attributeValues(row.key, prefix, searchWindow()) : Promise.resolve([])),
    row.value,
    focus === "value" && row.key !== "",
    [row.key],
  );
  const failed = keys.error ?? values.error;
  return (
    <div
      class="attr-row"
      data-testid="attr-row"
      onFocusCapture={(e) => setFocus((e.target as HTMLElement).getAttribute("name") === "attrValue" ? "value" : "key")}
    >
      <Combobox label={`Attribute ${index + 1} key`} name="attrKey" value={row.key} options={keys.items} placeholder="key" invalid={invalid} onChange={(key) => onChange({ ...row, key })} />
      <span aria-hidden="true">=</span>
      <Combobox label={`Attribute ${index + 1} value`} name="attrValue" value={row.value} options={values.items} placeholder="value" onChange={(value) => onChange({ ...row, value })} />
      <button type="button" class="link" aria-label={`Remove attribute filter ${index + 1}`} onClick={() => onChange(null)}>
        ✕
      </button>
      {failed !== null && <div class="muted attr-note">Suggestions unavailable: {message(failed)}</div>}
    </div>
  );
}

// A text input with a list of suggestions (WAI-ARIA combobox: arrows move, Enter picks,
// Escape closes), for operation names and attribute keys and values. Free text stays valid.
import { useState } from "preact/hooks";

let nextId = 0;

export interface ComboboxProps {
  readonly label: string;
  readonly value: string;
  readonly options: readonly string[];
  readonly onChange: (value: string) => void;
  readonly name?: string;
  readonly placeholder?: string;
  readonly invalid?: boolean;
  readonly note?: string | null;
}

export function Combobox({ label, value, options, onChange, name, placeholder, invalid, note }: ComboboxProps) {
  const [id] = useState(() => `combo-${++nextId}`);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const shown = open ? options.filter((o) => o !== value).slice(0, 50) : [];
  const expanded = shown.length > 0;

  function pick(option: string) {
    onChange(option);
    setOpen(false);
    setActive(-1);
  }

  function onKeyDown(event: KeyboardEvent) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) setOpen(true);
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive((i) => (shown.length ? (i + step + shown.length) % shown.length : -1));
    } else if (event.key === "Enter" && expanded && active >= 0 && shown[active] !== undefined) {
      event.preventDefault();
      pick(shown[active] ?? "");
    } else if (event.key === "Escape" && expanded) {
      event.preventDefault();
      setOpen(false);
    }
  }

  return (
    <div class="combobox">
      <input
        id={id}
        name={name}
        role="combobox"
        aria-label={label}
        aria-autocomplete="list"
        aria-expanded={expanded}
        aria-controls={`${id}-list`}
        aria-activedescendant={expanded && active >= 0 ? `${id}-${active}` : undefined}
        aria-invalid={invalid || undefined}
        autocomplete="off"
        spellcheck={false}
        placeholder={placeholder}
        value={value}
        onInput={(e) => {
          onChange((e.target as HTMLInputElement).value);
          setOpen(true);
          setActive(-1);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setOpen(false)}
        onKeyDown={onKeyDown}
      />
      <ul id={`${id}-list`} role="listbox" aria-label={`${label} suggestions`} hidden={!expanded}>
        {shown.map((option, i) => (
          <li
            key={option}
            id={`${id}-${i}`}
            role="option"
            aria-selected={i === active}
            // mousedown, not click: the input keeps focus and blur does not close the list first.
            onMouseDown={(e) => {
              e.preventDefault();
              pick(option);
            }}
          >
            {option}
          </li>
        ))}
      </ul>
      {note && <div class="muted combobox-note">{note}</div>}
    </div>
  );
}

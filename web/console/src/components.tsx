import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { useI18n } from "./context.ts";
import { DICTIONARIES, type MessageKey } from "./i18n/index.ts";

/** An error as a message a person can read, announced to screen readers. */
export function ErrorAlert({ error }: { error: Error | string | null | undefined }) {
  if (!error) return null;
  return (
    <p role="alert" class="error">
      {typeof error === "string" ? error : error.message}
    </p>
  );
}

/**
 * A status word with its colour, in the console's language; `data-status` carries the API's own
 * value (`processed`, `running`, …) for tests and styles.
 */
export function StatusBadge({ status, label }: { status: string; label?: string }) {
  const { t } = useI18n();
  const known = (key: string): key is MessageKey => key in DICTIONARIES.en;
  const text =
    label ??
    (known(`status.${status}`)
      ? t(`status.${status}` as MessageKey)
      : known(`job.stage.${status}`)
        ? t(`job.stage.${status}` as MessageKey)
        : status.replace(/_/g, " "));
  return (
    <span class={`badge status-${status}`} data-status={status}>
      {text}
    </span>
  );
}

/**
 * A confirmation in a modal `<dialog>`: the rest of the page is inert while it is open, Escape
 * cancels, and the confirm button carries `confirmLabel` ("Delete").
 */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  onConfirm: () => void | Promise<void>;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  const confirm = async () => {
    setBusy(true);
    try {
      await props.onConfirm();
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onClose={props.onClose} class="confirm">
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <div class="actions">
        {/* Cancel first: the dialog focuses it when it opens, so Enter never deletes by accident. */}
        <button type="button" class="secondary" onClick={props.onClose}>
          {t("common.cancel")}
        </button>
        <button type="button" class="danger" onClick={confirm} disabled={busy}>
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** A copy-to-clipboard button that says "Copied" for a moment. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const { t } = useI18n();
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard permission (an insecure origin): select nothing, say nothing copied.
      return;
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <button type="button" class="secondary small" onClick={copy} aria-label={label}>
      {copied ? t("common.copied") : t("common.copy")}
    </button>
  );
}

/**
 * A table's horizontal scroller: focusable and named, so a keyboard can scroll a table wider than
 * a phone's screen (axe's scrollable-region-focusable).
 */
export function TableWrap({
  label,
  children,
  class: extra,
}: {
  label: string;
  children: ComponentChildren;
  class?: string;
}) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must take focus to be scrolled by keyboard
    <section class={extra ? `table-wrap ${extra}` : "table-wrap"} aria-label={label} tabIndex={0}>
      {children}
    </section>
  );
}

import type { Alert } from './boardTypes.js';

/** A message about the last write, with its retry (if any) and a dismiss button. */
export function AlertBox({
  alert,
  onClose,
  testId,
}: {
  alert: Alert;
  onClose: () => void;
  testId: string;
}) {
  return (
    <div className="alert" role="alert" data-testid={testId}>
      <span>{alert.text}</span>
      {alert.retry && (
        <button type="button" onClick={alert.retry}>
          Retry
        </button>
      )}
      <button type="button" onClick={onClose}>
        Dismiss
      </button>
    </div>
  );
}

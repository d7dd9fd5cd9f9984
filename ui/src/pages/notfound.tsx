import { href } from "../router";
import type { PageProps } from "./index";

export function NotFound({ route }: PageProps) {
  return (
    <div class="empty" data-testid="not-found">
      <h1>No such view</h1>
      <p>
        <code>/ui{route.path}</code> is not a view of this UI. Try <a href={href("/traces")}>trace search</a>.
      </p>
    </div>
  );
}

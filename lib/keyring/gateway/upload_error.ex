defmodule Keyring.Gateway.UploadError do
  @moduledoc false
  # Raised inside a body stream when the client's upload fails (too large,
  # stalled, gone), so Keyring.Store.put_stream/2 aborts its spool file.
  defexception [:reason]

  @impl true
  def message(%{reason: reason}), do: "upload failed: #{inspect(reason)}"
end

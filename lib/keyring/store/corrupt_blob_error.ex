defmodule Keyring.Store.CorruptBlobError do
  @moduledoc """
  Raised by a verifying `Keyring.Store.stream/2` when the bytes read back do
  not hash to the blob's cid (or the blob ended early).
  """
  defexception [:cid]

  @impl Exception
  def message(%{cid: cid}), do: "stored bytes of blob #{cid} do not match its cid"
end

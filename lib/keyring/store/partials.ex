defmodule Keyring.Store.Partials do
  @moduledoc false
  # Partial blobs and verified streams from Elixir (documented in
  # Keyring.Store). The data plane itself runs in Rust on the store.

  alias Keyring.{Instance, Native}
  alias Keyring.Store.Cid

  def partial(cid, opts) do
    opts = Keyword.validate!(opts, instance: Keyring)

    case Native.store_partial_info(handle(opts), Cid.parse!(cid)) do
      {:ok, nil} ->
        {:error, :not_found}

      {:ok, {size, verified, have, missing}} ->
        {:ok, %{size: size, size_verified: verified, have: have, missing: missing}}

      error ->
        error
    end
  end

  # The verified stream of `ranges` (`[{first, stop | :infinity}]` groups)
  # of a blob, as one binary (at most 64 MiB): for tools and tests.
  def verified_stream(cid, ranges, opts) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Native.store_encode(handle(opts), Cid.parse!(cid), ranges)
  end

  # Writes a verified stream of `ranges` of the blob `cid` of `size` bytes
  # into its partial blob (completing it when nothing is missing):
  # `{:ok, {:partial, written, missing}}` or `{:ok, {:complete, cid}}`.
  def put_verified(cid, size, ranges, stream, opts) do
    opts = Keyword.validate!(opts, instance: Keyring)

    case Native.store_partial_write(handle(opts), Cid.parse!(cid), size, ranges, stream) do
      {:ok, {:complete, raw}} -> {:ok, {:complete, Cid.encode(raw)}}
      other -> other
    end
  end

  defp handle(opts), do: Instance.fetch!(opts[:instance], :store)
end

defmodule Keyring.Hash do
  @moduledoc """
  BLAKE3 hashing, one-shot or streaming. A digest is 32 bytes; the digest of a
  blob is its content id in `Keyring.Store`.

      iex> Keyring.Hash.hash("") |> Base.encode16(case: :lower)
      "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
      iex> Keyring.Hash.hash_stream(["he", "llo"]) == Keyring.Hash.hash("hello")
      true

  Inputs up to 64 KiB are hashed on the caller's scheduler (tens of
  microseconds, charged to its timeslice); larger ones on a dirty CPU
  scheduler, as `:crypto.hash/2` does, so the processes queued behind the
  caller are not kept waiting.
  """

  alias Keyring.Native

  @dirty_above 64 * 1024

  @typedoc "A streaming hasher (an opaque native reference)."
  @opaque hasher :: reference()

  @doc "The BLAKE3 digest of `data`."
  @spec hash(binary()) :: <<_::256>>
  def hash(data) when is_binary(data) and byte_size(data) <= @dirty_above,
    do: Native.blake3_hash(data)

  def hash(data) when is_binary(data), do: Native.blake3_hash_dirty(data)
  def hash(other), do: raise(ArgumentError, "expected a binary, got: #{inspect(other)}")

  @doc "A new streaming hasher."
  @spec new() :: hasher()
  def new, do: Native.hasher_new()

  @doc "Feeds `data` (a binary or iodata) into `hasher`; returns the hasher."
  @spec update(hasher(), iodata()) :: hasher()
  def update(hasher, data) when is_binary(data) and byte_size(data) <= @dirty_above do
    :ok = Native.hasher_update(hasher, data)
    hasher
  end

  def update(hasher, data) when is_binary(data) do
    :ok = Native.hasher_update_dirty(hasher, data)
    hasher
  end

  def update(hasher, data) when is_list(data), do: update(hasher, IO.iodata_to_binary(data))
  def update(_hasher, other), do: raise(ArgumentError, "expected iodata, got: #{inspect(other)}")

  @doc "The digest of everything fed so far."
  @spec finalize(hasher()) :: <<_::256>>
  def finalize(hasher), do: Native.hasher_finalize(hasher)

  @doc "Hashes an enumerable of binaries (e.g. `File.stream!(path, [], 65_536)`)."
  @spec hash_stream(Enumerable.t()) :: <<_::256>>
  def hash_stream(enumerable) do
    enumerable |> Enum.reduce(new(), &update(&2, &1)) |> finalize()
  end
end

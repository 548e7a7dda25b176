defmodule Keyring.Hash do
  @moduledoc """
  BLAKE3 hashing, one-shot or streaming. A digest is 32 bytes; the digest of a
  blob is its content id in `Keyring.Store`.

      iex> Keyring.Hash.hash("") |> Base.encode16(case: :lower)
      "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
      iex> Keyring.Hash.hash_stream(["he", "llo"]) == Keyring.Hash.hash("hello")
      true

  Hashing runs on the caller's scheduler in slices of at most 128 KiB (under
  100 µs each, charged to the caller's timeslice), so a large input yields
  like any long-running Erlang loop and never holds a scheduler: the
  processes queued behind the caller, and a high-priority process woken
  meanwhile, get their turn between slices. (A dirty CPU scheduler was the
  first design; on a 2-core machine its thread competes with the scheduler
  threads for the cores, which the benchmark's latency probe showed as
  millisecond wake-up delays.)
  """

  alias Keyring.Native

  @slice 128 * 1024

  @typedoc "A streaming hasher (an opaque native reference)."
  @opaque hasher :: reference()

  @doc "The BLAKE3 digest of `data`."
  @spec hash(binary()) :: <<_::256>>
  def hash(data) when is_binary(data) and byte_size(data) <= @slice,
    do: Native.blake3_hash(data)

  def hash(data) when is_binary(data), do: new() |> update(data) |> finalize()
  def hash(other), do: raise(ArgumentError, "expected a binary, got: #{inspect(other)}")

  @doc "A new streaming hasher."
  @spec new() :: hasher()
  def new, do: Native.hasher_new()

  @doc "Feeds `data` (a binary or iodata) into `hasher`; returns the hasher."
  @spec update(hasher(), iodata()) :: hasher()
  def update(hasher, data) when is_binary(data), do: feed(hasher, data, 0, byte_size(data))

  def update(hasher, data) when is_list(data), do: update(hasher, IO.iodata_to_binary(data))
  def update(_hasher, other), do: raise(ArgumentError, "expected iodata, got: #{inspect(other)}")

  defp feed(hasher, data, offset, size) when size - offset <= @slice do
    :ok = Native.hasher_update(hasher, binary_part(data, offset, size - offset))
    hasher
  end

  defp feed(hasher, data, offset, size) do
    :ok = Native.hasher_update(hasher, binary_part(data, offset, @slice))
    feed(hasher, data, offset + @slice, size)
  end

  @doc "The digest of everything fed so far."
  @spec finalize(hasher()) :: <<_::256>>
  def finalize(hasher), do: Native.hasher_finalize(hasher)

  @doc "Hashes an enumerable of binaries (e.g. `File.stream!(path, [], 65_536)`)."
  @spec hash_stream(Enumerable.t()) :: <<_::256>>
  def hash_stream(enumerable) do
    enumerable |> Enum.reduce(new(), &update(&2, &1)) |> finalize()
  end
end

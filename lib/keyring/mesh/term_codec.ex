defmodule Keyring.Mesh.TermCodec do
  @moduledoc false
  # The restricted term codec (native/keyring_core/src/wire/term.rs): integers
  # (64-bit), floats, binaries, existing atoms, proper lists, tuples, maps.
  # Decoding never creates atoms and never runs :erlang.binary_to_term/1.

  alias Keyring.Native

  @dirty_threshold 256 * 1024

  @spec encode(term()) :: {:ok, binary()} | {:error, term()}
  def encode(term) do
    if dirty?(term), do: Native.term_encode_dirty(term), else: Native.term_encode(term)
  end

  @doc false
  # Whether encoding `term` may take more than ~1 ms (then run it dirty).
  @spec dirty?(term()) :: boolean()
  def dirty?(term) when is_binary(term), do: byte_size(term) > @dirty_threshold

  def dirty?(term) when is_list(term) or is_map(term) or is_tuple(term),
    do:
      :erts_debug.flat_size(term) > div(@dirty_threshold, 8) or
        big_binaries?(term, 0) > @dirty_threshold

  def dirty?(_term), do: false

  # flat_size does not count off-heap binaries: add them up (bounded walk).
  defp big_binaries?(_term, acc) when acc > @dirty_threshold, do: acc
  defp big_binaries?(b, acc) when is_binary(b), do: acc + byte_size(b)
  defp big_binaries?([h | t], acc), do: big_binaries?(t, big_binaries?(h, acc))
  defp big_binaries?(t, acc) when is_tuple(t), do: big_binaries?(Tuple.to_list(t), acc)

  defp big_binaries?(m, acc) when is_map(m),
    do: Enum.reduce(m, acc, fn {k, v}, a -> big_binaries?(v, big_binaries?(k, a)) end)

  defp big_binaries?(_other, acc), do: acc

  @spec decode(binary()) :: {:ok, term()} | {:error, term()}
  def decode(bytes) when byte_size(bytes) > @dirty_threshold, do: Native.term_decode_dirty(bytes)
  def decode(bytes) when is_binary(bytes), do: Native.term_decode(bytes)
end

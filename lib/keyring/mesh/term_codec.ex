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
  # `lent` is the size from which binaries are lent to the mesh rather than
  # copied (see native/keyring_nif/src/lent.rs): those cost nothing to encode.
  @spec dirty?(term(), non_neg_integer() | :infinity) :: boolean()
  def dirty?(term, lent \\ :infinity)

  def dirty?(term, lent) when is_binary(term), do: copied(term, 0, lent) > @dirty_threshold

  def dirty?(term, lent) when is_list(term) or is_map(term) or is_tuple(term),
    do:
      :erts_debug.flat_size(term) > div(@dirty_threshold, 8) or
        copied(term, 0, lent) > @dirty_threshold

  def dirty?(_term, _lent), do: false

  # Bytes of binaries the encoder copies; flat_size does not count off-heap
  # binaries (bounded walk: stops once over the threshold).
  defp copied(_term, acc, _lent) when acc > @dirty_threshold, do: acc
  defp copied(b, acc, lent) when is_binary(b) and byte_size(b) >= lent, do: acc
  defp copied(b, acc, _lent) when is_binary(b), do: acc + byte_size(b)
  defp copied([h | t], acc, lent), do: copied(t, copied(h, acc, lent), lent)
  defp copied(t, acc, lent) when is_tuple(t), do: copied(Tuple.to_list(t), acc, lent)

  defp copied(m, acc, lent) when is_map(m),
    do: Enum.reduce(m, acc, fn {k, v}, a -> copied(v, copied(k, a, lent), lent) end)

  defp copied(_other, acc, _lent), do: acc

  @spec decode(binary()) :: {:ok, term()} | {:error, term()}
  def decode(bytes) when byte_size(bytes) > @dirty_threshold, do: Native.term_decode_dirty(bytes)
  def decode(bytes) when is_binary(bytes), do: Native.term_decode(bytes)
end

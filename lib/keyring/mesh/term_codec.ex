defmodule Keyring.Mesh.TermCodec do
  @moduledoc false
  # The restricted term codec (native/keyring_core/src/wire/term.rs): integers
  # (64-bit), floats, binaries, existing atoms, proper lists, tuples, maps.
  # Decoding never creates atoms and never runs :erlang.binary_to_term/1.

  alias Keyring.Native

  @dirty_threshold 256 * 1024

  @spec encode(term()) :: {:ok, binary()} | {:error, term()}
  def encode(term) when is_binary(term) and byte_size(term) > @dirty_threshold,
    do: Native.term_encode_dirty(term)

  def encode(term) when is_list(term) or is_map(term) or is_tuple(term) do
    if :erts_debug.flat_size(term) > div(@dirty_threshold, 8),
      do: Native.term_encode_dirty(term),
      else: Native.term_encode(term)
  end

  def encode(term), do: Native.term_encode(term)

  @spec decode(binary()) :: {:ok, term()} | {:error, term()}
  def decode(bytes) when byte_size(bytes) > @dirty_threshold, do: Native.term_decode_dirty(bytes)
  def decode(bytes) when is_binary(bytes), do: Native.term_decode(bytes)
end

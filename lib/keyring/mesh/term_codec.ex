defmodule Keyring.Mesh.TermCodec do
  @moduledoc false
  # The restricted term codec (native/keyring_core/src/wire/term/): integers
  # (64-bit), floats, binaries, existing atoms, proper lists, tuples, maps.
  # Decoding never creates atoms and never runs :erlang.binary_to_term/1.
  #
  # Limits, the same for requests and replies: 64 MiB, 64 levels, 2,097,152
  # values, and never more values than a third of the document's bytes,
  # whatever its counts claim (see wire/term/decode.rs).
  #
  # Scheduling: encode/1 and decode/1 first run on the caller's scheduler,
  # where the NIF stops after 1,000 values or 256 KiB copied (well under a
  # millisecond) and answers {:error, :dirty}; the call is then repeated on a
  # dirty CPU scheduler. So small documents pay no dirty-scheduler hop, large
  # ones block no normal scheduler, and the wasted try is bounded.

  alias Keyring.Native

  # dirty?/2's bounds: the NIF's normal-scheduler bounds (term_codec.rs).
  @normal_values 1_000
  @normal_copied 256 * 1024

  @doc false
  # The normal-scheduler bounds: {values, bytes copied}.
  def normal_bounds, do: {@normal_values, @normal_copied}

  @spec encode(term()) :: {:ok, binary()} | {:error, term()}
  def encode(term) do
    case Native.term_encode(term) do
      {:error, :dirty} -> Native.term_encode_dirty(term)
      result -> result
    end
  end

  @spec decode(binary()) :: {:ok, term()} | {:error, term()}
  def decode(bytes) when is_binary(bytes) do
    case Native.term_decode(bytes) do
      {:error, :dirty} -> Native.term_decode_dirty(bytes)
      result -> result
    end
  end

  @doc false
  # Whether encoding `term` may take more than the normal-scheduler bounds
  # (then encode it on a dirty scheduler). `lent` is the size from which
  # binaries are lent to the mesh rather than copied (see
  # native/keyring_nif/src/lent.rs): those cost nothing to encode. The walk is
  # Erlang code (it yields) and stops once past either bound.
  @spec dirty?(term(), non_neg_integer() | :infinity) :: boolean()
  def dirty?(term, lent \\ :infinity), do: over?(walk(term, {0, 0}, lent))

  defp over?(:over), do: true
  defp over?({values, copied}), do: values > @normal_values or copied > @normal_copied

  # {values, bytes copied} so far, or :over once past a bound.
  defp walk(_term, :over, _lent), do: :over

  defp walk(_term, {values, copied}, _lent)
       when values > @normal_values or copied > @normal_copied,
       do: :over

  defp walk(b, {v, c}, lent) when is_binary(b) do
    if byte_size(b) >= lent, do: {v + 1, c}, else: {v + 1, c + byte_size(b)}
  end

  defp walk(list, {v, c}, lent) when is_list(list), do: walk_list(list, {v + 1, c}, lent)

  defp walk(t, {v, c}, lent) when is_tuple(t) do
    if tuple_size(t) > @normal_values,
      do: :over,
      else: walk_list(Tuple.to_list(t), {v + 1, c}, lent)
  end

  defp walk(m, {v, c}, lent) when is_map(m) do
    if map_size(m) > @normal_values,
      do: :over,
      else: :maps.fold(fn k, x, acc -> walk(x, walk(k, acc, lent), lent) end, {v + 1, c}, m)
  end

  defp walk(a, {v, c}, _lent) when is_atom(a),
    do: {v + 1, c + byte_size(:erlang.atom_to_binary(a, :utf8))}

  defp walk(_other, {v, c}, _lent), do: {v + 1, c}

  # Cell by cell (never length/1 of a long list); stops once over.
  defp walk_list(_list, :over, _lent), do: :over
  defp walk_list([h | t], acc, lent), do: walk_list(t, walk(h, acc, lent), lent)
  defp walk_list(_end_or_improper_tail, acc, _lent), do: acc
end

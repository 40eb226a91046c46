"""QuickBooks Online: customers and finalized invoices are pushed to the MSP's books, and payments pulled back."""
